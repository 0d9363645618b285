//! A backend on loopback recording into a journal (tokens redacted), the `basic` fixture
//! loaded: what the backend's own tests start from.

use std::sync::Arc;

use convo_tck::Secrets;
use convo_tck::backend::Backend;
use convo_tck::backend::fixture::Fixture;
use convo_tck::clock::VirtualClock;
use convo_tck::journal::Journal;

pub(crate) async fn journaled_backend() -> (Backend, Journal, VirtualClock) {
    let clock = VirtualClock::new();
    let secrets = Secrets::default();
    let journal = Journal::new(clock.clone(), secrets.clone());
    let backend = Backend::builder(clock.clone())
        .record_to(Arc::new(journal.clone()))
        .secrets(secrets)
        .start()
        .await
        .expect("a backend on loopback");
    backend.load_fixture(
        "basic",
        &Fixture::named("basic").expect("the basic fixture"),
    );
    (backend, journal, clock)
}
