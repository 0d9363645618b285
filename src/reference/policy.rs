//! The reference client's behaviour as one value: every switch names the documented behaviour,
//! and a planted [`Fault`] turns exactly one of them off. The engine reads these switches, so a
//! reader of the engine sees the correct path first and the fault as the `else`.

use super::fault::{Fault, FaultSet};

/// What the reference client does; all `true` for the compliant client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// Client operations wait for the client's synchronization (off: `ops-before-sync`).
    pub(crate) client_ops_wait_for_sync: bool,
    /// Conversation operations wait for that conversation (off:
    /// `conversation-ops-before-sync`).
    pub(crate) conversation_ops_wait_for_sync: bool,
    /// A refresh never re-announces an earlier sync status (off: `sync-status-regresses`).
    pub(crate) sync_status_never_regresses: bool,
    /// Updates complete on their Updated event (off: `update-completes-on-ack`).
    pub(crate) updates_complete_on_event: bool,
    /// The value shown is the backend's, not the local write (off: `local-write-wins`).
    pub(crate) show_backend_value: bool,
    /// Snapshots are applied only when newer (off: `stale-event-overwrites`).
    pub(crate) compare_revisions: bool,
    /// `start` answers before the list is fetched (off: `await-full-list`).
    pub(crate) start_before_list: bool,
    /// The conversation listener is attached before the fetch (off: `listen-after-fetch`).
    pub(crate) listen_before_fetch: bool,
    /// Conversations are merged by sid (off: `no-dedupe`).
    pub(crate) dedupe_by_sid: bool,
    /// Any event about an unknown conversation adds it (off: `ignore-unknown-updates`).
    pub(crate) learn_from_any_event: bool,
    /// A page cannot bring back what an event removed (off: `no-tombstones`).
    pub(crate) keep_tombstones: bool,
    /// An explicit add brings a removed conversation back (off: `tombstones-forever`).
    pub(crate) add_clears_tombstone: bool,
    /// Every page of the list is fetched (off: `first-page-only`).
    pub(crate) fetch_every_page: bool,
    /// Messages are fetched only when the app asks (off: `autoload-messages`).
    pub(crate) messages_on_demand: bool,
    /// New messages are reported (off: `silent-new-messages`).
    pub(crate) report_new_messages: bool,
    /// Message changes are reported only for fetched messages (off: `events-for-unfetched`).
    pub(crate) changes_for_fetched_only: bool,
    /// Changes of fetched messages are reported (off: `drop-fetched-updates`).
    pub(crate) report_fetched_changes: bool,
    /// A lost socket is replaced by the same instance (off: `recreate-on-reconnect`).
    pub(crate) keep_instance_on_reconnect: bool,
    /// A heartbeat notices a socket that went silent (off: `no-heartbeat`).
    pub(crate) heartbeat: bool,
    /// A reconnect resumes after the last event received (off: `lose-outage-events`).
    pub(crate) resume_after_last_event: bool,
    /// Going to the background keeps the client (off: `shutdown-on-background`).
    pub(crate) survive_background: bool,
    /// A lost connection never shuts the client down (off: `shutdown-on-error`).
    pub(crate) survive_connection_loss: bool,
    /// A shut-down instance and its handles are never used again (off:
    /// `reuse-after-shutdown`).
    pub(crate) retire_on_shutdown: bool,
    /// Reconnect attempts back off exponentially (off: `no-backoff`).
    pub(crate) reconnect_backoff: bool,
    /// The socket closes in the background, so one is open at a time (off: `second-socket`).
    pub(crate) close_socket_in_background: bool,
    /// Handles are released before the client shuts down (off: `release-after-shutdown`).
    pub(crate) release_before_shutdown: bool,
    /// Handles are released at all on logout (off: `leak-handles`).
    pub(crate) release_handles: bool,
    /// A token living under 3 minutes is a typed error, fetched once (off: `retry-short-token`).
    pub(crate) refuse_short_tokens: bool,
    /// The generator is asked for hours (off: `ttl-too-short`).
    pub(crate) ttl_hours: bool,
    /// The generator is asked for at most a day (off: `ttl-too-long`).
    pub(crate) ttl_at_most_a_day: bool,
    /// `token_about_to_expire` fetches a token and hands it to the channel (off: `ignore-about-to-expire`).
    pub(crate) refresh_on_warning: bool,
    /// An expired token is refreshed for the same instance (off: `recreate-on-expired`).
    pub(crate) keep_instance_on_expiry: bool,
    /// A valid stored token is used at start (off: `wait-for-generator`).
    pub(crate) use_cached_token: bool,
    /// Tokens travel in headers only (off: `token-in-url`).
    pub(crate) token_in_header_only: bool,
    /// Tokens are never logged (off: `log-token`).
    pub(crate) never_log_tokens: bool,
    /// A start registers the device for push unless the stored registration matches (off: `no-register-on-start`).
    pub(crate) register_on_start: bool,
    /// A start with the stored device token and identity does not register again (off: `register-every-start`).
    pub(crate) skip_unchanged_registration: bool,
    /// A new device token is registered and the old binding removed (off: `ignore-token-rotation`).
    pub(crate) follow_token_rotation: bool,
    /// Relaunched as another identity, the previous identity's binding is removed (off: `keep-old-identity-binding`).
    pub(crate) remove_previous_identity_binding: bool,
    /// Count reads are cached for the lifetime (off: `uncached-counts`).
    pub(crate) cache_counts: bool,
    /// Cached counts expire after the lifetime (off: `cache-forever`).
    pub(crate) expire_counts: bool,
    /// An unread count without a read horizon is null (off: `zero-unread`).
    pub(crate) unknown_unread_is_null: bool,
}

impl From<&FaultSet> for Policy {
    fn from(faults: &FaultSet) -> Self {
        let on = |f: Fault| !faults.has(f);
        Self {
            client_ops_wait_for_sync: on(Fault::OpsBeforeSync),
            conversation_ops_wait_for_sync: on(Fault::ConversationOpsBeforeSync),
            sync_status_never_regresses: on(Fault::SyncStatusRegresses),
            updates_complete_on_event: on(Fault::UpdateCompletesOnAck),
            show_backend_value: on(Fault::LocalWriteWins),
            compare_revisions: on(Fault::StaleEventOverwrites),
            start_before_list: on(Fault::AwaitFullList),
            listen_before_fetch: on(Fault::ListenAfterFetch),
            dedupe_by_sid: on(Fault::NoDedupe),
            learn_from_any_event: on(Fault::IgnoreUnknownUpdates),
            keep_tombstones: on(Fault::NoTombstones),
            add_clears_tombstone: on(Fault::TombstonesForever),
            fetch_every_page: on(Fault::FirstPageOnly),
            messages_on_demand: on(Fault::AutoloadMessages),
            report_new_messages: on(Fault::SilentNewMessages),
            changes_for_fetched_only: on(Fault::EventsForUnfetched),
            report_fetched_changes: on(Fault::DropFetchedUpdates),
            keep_instance_on_reconnect: on(Fault::RecreateOnReconnect),
            heartbeat: on(Fault::NoHeartbeat),
            resume_after_last_event: on(Fault::LoseOutageEvents),
            survive_background: on(Fault::ShutdownOnBackground),
            survive_connection_loss: on(Fault::ShutdownOnError),
            retire_on_shutdown: on(Fault::ReuseAfterShutdown),
            reconnect_backoff: on(Fault::NoBackoff),
            close_socket_in_background: on(Fault::SecondSocket),
            release_before_shutdown: on(Fault::ReleaseAfterShutdown),
            release_handles: on(Fault::LeakHandles),
            refuse_short_tokens: on(Fault::RetryShortToken),
            ttl_hours: on(Fault::TtlTooShort),
            ttl_at_most_a_day: on(Fault::TtlTooLong),
            refresh_on_warning: on(Fault::IgnoreAboutToExpire),
            keep_instance_on_expiry: on(Fault::RecreateOnExpired),
            use_cached_token: on(Fault::WaitForGenerator),
            token_in_header_only: on(Fault::TokenInUrl),
            never_log_tokens: on(Fault::LogToken),
            register_on_start: on(Fault::NoRegisterOnStart),
            skip_unchanged_registration: on(Fault::RegisterEveryStart),
            follow_token_rotation: on(Fault::IgnoreTokenRotation),
            remove_previous_identity_binding: on(Fault::KeepOldIdentityBinding),
            cache_counts: on(Fault::UncachedCounts),
            expire_counts: on(Fault::CacheForever),
            unknown_unread_is_null: on(Fault::ZeroUnread),
        }
    }
}
