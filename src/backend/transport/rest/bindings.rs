//! Push bindings: the v1 account-level resource `/v1/Services/{ChatServiceSid}/Bindings` (list,
//! fetch, delete), and the registration write a client SDK performs, which is NOT part of the
//! public v1 API: `POST /v1/Client/Registrations` (`Address`, `BindingType`, `MessageTypes`)
//! and `DELETE /v1/Client/Registrations/{Address}`, with the client's access token. The kit's
//! backend serves the registration so that a client's push registration has something to
//! reach; its answer is the v1 binding resource.
//!
//! Every request here first expires the bindings idle for a year (journaled), and every change
//! of the binding set is journaled as one [`crate::backend::fact::BindingFact`].

#![expect(
    clippy::result_large_err,
    reason = "the error side is the HTTP answer itself"
)]

use std::collections::BTreeMap;

use super::paging::{self, Envelope, Position};
use super::{Answer, Call, Principal};
use crate::backend::endpoint::Endpoint;
use crate::backend::fact::quoted;
use crate::backend::model::{BindingChange, BindingRecord, BindingType, Model};
use crate::backend::render;
use crate::backend::service::binding_fact;
use crate::wire::resources::BindingsPage;

/// The longest device address a registration takes (APNs tokens are 64 hex digits, FCM tokens
/// around 160 characters).
const MAX_ADDRESS: usize = 512;

/// The message types a registration may subscribe to.
const MESSAGE_TYPES: [&str; 3] = [
    "new_message",
    "added_to_conversation",
    "removed_from_conversation",
];

/// The binding types the v1 list filter knows (`twilsock` bindings never exist here).
const LIST_TYPES: [&str; 4] = ["apn", "gcm", "fcm", "twilsock"];

/// `address` as an endpoint journals it: whole when within the limit, cut otherwise.
fn shown(address: &str) -> String {
    if address.len() <= MAX_ADDRESS {
        address.to_owned()
    } else {
        quoted(address)
    }
}

/// The service sid of the path (segment 2) must be this service's.
fn check_service(call: &Call<'_>, m: &Model, ep: &Endpoint) -> Result<(), Answer> {
    let named = call.segments.get(2).map_or("", String::as_str);
    if named == m.service_sid {
        Ok(())
    } else {
        Err(Answer::error(
            ep.clone(),
            404,
            20_404,
            format!("conversation service {} not found", super::echo(named)),
        ))
    }
}

/// Whether `principal` may see `b`: the account any, a token its own identity's.
fn may_touch(principal: &Principal, b: &BindingRecord, ep: &Endpoint) -> Result<(), Answer> {
    match principal {
        Principal::Client(identity) if *identity != b.identity => Err(Answer::error(
            ep.clone(),
            403,
            20_403,
            format!(
                "a token of {identity} may only touch its own bindings, not {}",
                b.sid
            ),
        )),
        _ => Ok(()),
    }
}

/// The values of a repeatable query parameter, in order.
fn all<'c>(call: &'c Call<'_>, name: &str) -> Vec<&'c str> {
    call.query_pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `GET /v1/Services/{ChatServiceSid}/Bindings`: paged (`PageSize` 1..=100, `PageToken`),
/// filtered by `BindingType` and `Identity` (each repeatable). A token lists its own bindings
/// only, and may not name another identity.
pub(super) fn list(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Bindings;
    let principal = match call.principal(&ep) {
        Ok(p) => p,
        Err(a) => return a,
    };
    call.service
        .bindings(|m| (list_page(call, m, &principal, &ep), Vec::new()))
}

fn list_page(call: &Call<'_>, m: &Model, principal: &Principal, ep: &Endpoint) -> Answer {
    if let Err(a) = check_service(call, m, ep) {
        return a;
    }
    let types = all(call, "BindingType");
    if let Some(bad) = types.iter().find(|t| !LIST_TYPES.contains(t)) {
        return Answer::error(
            ep.clone(),
            400,
            20_001,
            format!(
                "invalid BindingType `{}`: expected one of {}",
                super::echo(bad),
                LIST_TYPES.join(", ")
            ),
        );
    }
    let identities = all(call, "Identity");
    if let Principal::Client(own) = principal
        && let Some(other) = identities.iter().find(|i| **i != own)
    {
        return Answer::error(
            ep.clone(),
            403,
            20_403,
            format!(
                "a token of {own} may only list its own bindings, not {}'s",
                super::echo(other)
            ),
        );
    }
    let (page_size, at) = match call.paging(ep, 100) {
        Ok(p) => p,
        Err(a) => return a,
    };
    if let Some(a) = Answer::gated(m, ep) {
        return a;
    }
    let items: BTreeMap<Position, &BindingRecord> = m
        .bindings()
        .filter(|b| types.is_empty() || types.contains(&b.binding_type.name()))
        .filter(|b| identities.is_empty() || identities.contains(&b.identity.as_str()))
        .filter(|b| match principal {
            Principal::Client(own) => b.identity == *own,
            Principal::Account => true,
        })
        .map(|b| ((b.seq, 0), b))
        .collect();
    let read = paging::read(&items, at.cursor, page_size as usize, false);
    let keep = call
        .query_pairs
        .iter()
        .filter_map(|(k, v)| match k.as_str() {
            "BindingType" => Some(("BindingType", v.clone())),
            "Identity" => Some(("Identity", v.clone())),
            _ => None,
        })
        .collect();
    let envelope = Envelope {
        key: "bindings",
        list_url: format!("{}/v1/Services/{}/Bindings", m.base_url, m.service_sid),
        keep,
        page: at.page,
        page_size,
    };
    let meta = envelope.meta(
        &read,
        call.query.get("PageToken").map(String::as_str),
        |_| None,
    );
    Answer::ok(
        ep.clone(),
        BindingsPage {
            bindings: read
                .items
                .iter()
                .map(|(_, b)| render::binding(m, b))
                .collect(),
            meta,
        },
    )
}

/// The binding the path names (segment 4), if the principal may touch it.
fn addressed<'m>(
    call: &Call<'_>,
    m: &'m Model,
    principal: &Principal,
    ep: &Endpoint,
) -> Result<&'m BindingRecord, Answer> {
    check_service(call, m, ep)?;
    let wanted = call.segments.get(4).map_or("", String::as_str);
    let b = m.binding_by_sid(wanted).ok_or_else(|| {
        Answer::error(
            ep.clone(),
            404,
            20_404,
            format!("binding {} not found", super::echo(wanted)),
        )
    })?;
    may_touch(principal, b, ep)?;
    Ok(b)
}

fn sid_named(call: &Call<'_>) -> String {
    quoted(call.segments.get(4).map_or("", String::as_str))
}

/// `GET /v1/Services/{ChatServiceSid}/Bindings/{Sid}`.
pub(super) fn fetch(call: &Call<'_>) -> Answer {
    let ep = Endpoint::Binding {
        sid: sid_named(call),
    };
    let principal = match call.principal(&ep) {
        Ok(p) => p,
        Err(a) => return a,
    };
    call.service.bindings(|m| {
        let answer = match addressed(call, m, &principal, &ep) {
            Err(a) => a,
            Ok(b) => match Answer::gated(m, &ep) {
                Some(a) => a,
                None => Answer::ok(ep.clone(), render::binding(m, b)),
            },
        };
        (answer, Vec::new())
    })
}

/// `DELETE /v1/Services/{ChatServiceSid}/Bindings/{Sid}`: 204.
pub(super) fn delete(call: &Call<'_>) -> Answer {
    let ep = Endpoint::DeleteBinding {
        sid: sid_named(call),
    };
    let principal = match call.principal(&ep) {
        Ok(p) => p,
        Err(a) => return a,
    };
    call.service.bindings(|m| {
        let sid = match addressed(call, m, &principal, &ep) {
            Err(a) => return (a, Vec::new()),
            Ok(b) => b.sid.clone(),
        };
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        match m.remove_binding_by_sid(&sid) {
            Some(b) => (
                Answer::ok(ep, ()).with_status(204),
                vec![binding_fact(BindingChange::Removed, &b)],
            ),
            None => (
                Answer::error(ep, 404, 20_404, "binding vanished"),
                Vec::new(),
            ),
        }
    })
}

/// A device address as a registration may name it.
fn check_address(address: &str, ep: &Endpoint) -> Result<(), Answer> {
    let bad = |why: &str| Answer::error(ep.clone(), 400, 20_001, format!("invalid Address: {why}"));
    if address.is_empty() {
        return Err(bad("it is empty"));
    }
    if address.len() > MAX_ADDRESS {
        return Err(bad(&format!("longer than {MAX_ADDRESS} bytes")));
    }
    if address.chars().any(char::is_control) {
        return Err(bad("it holds control characters"));
    }
    Ok(())
}

/// `POST /v1/Client/Registrations` (the client SDK's registration write; NOT part of the public
/// v1 API): form fields `Address` (required: the device token), `BindingType` (required: `apn`,
/// `fcm` or `gcm`) and `MessageTypes` (optional, repeatable), with the client's access token.
/// Creates the binding of (the token's identity, `Address`), answered 201, or refreshes it (same
/// sid, new `date_updated` and type), answered 200; either way with the binding resource.
pub(crate) fn register(call: &Call<'_>) -> Answer {
    let address = call.form.get("Address").cloned().unwrap_or_default();
    let ep = Endpoint::Register {
        address: shown(&address),
    };
    let identity = match call.authenticate(&ep) {
        Ok(claims) => claims.grants.identity,
        Err(a) => return a,
    };
    if let Err(a) = call.form_fields(&ep, &["Address", "BindingType", "MessageTypes"], false) {
        return a;
    }
    if !call.form.contains_key("Address") {
        return Answer::error(ep, 400, 20_001, "missing form field `Address`");
    }
    if let Err(a) = check_address(&address, &ep) {
        return a;
    }
    let binding_type = match call.form.get("BindingType").map(String::as_str) {
        None => return Answer::error(ep, 400, 20_001, "missing form field `BindingType`"),
        Some(t) => match t.parse::<BindingType>() {
            Ok(t) => t,
            Err(_) => {
                return Answer::error(
                    ep,
                    400,
                    20_001,
                    format!(
                        "invalid BindingType `{}`: expected apn, fcm or gcm",
                        super::echo(t)
                    ),
                );
            }
        },
    };
    let types: Vec<String> = call
        .form_pairs
        .iter()
        .filter(|(k, _)| k == "MessageTypes")
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(bad) = types.iter().find(|t| !MESSAGE_TYPES.contains(&t.as_str())) {
        return Answer::error(
            ep,
            400,
            20_001,
            format!(
                "invalid MessageTypes `{}`: expected {}",
                super::echo(bad),
                MESSAGE_TYPES.join(", ")
            ),
        );
    }
    call.service.bindings(|m| {
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        let types = (!types.is_empty()).then_some(types);
        let (b, change) = m.register_binding(&identity, &address, binding_type, types);
        let status = if change == BindingChange::Created {
            201
        } else {
            200
        };
        (
            Answer::ok(ep, render::binding(m, &b)).with_status(status),
            vec![binding_fact(change, &b)],
        )
    })
}

/// `DELETE /v1/Client/Registrations/{Address}` (the SDK's unregistration; NOT part of the
/// public v1 API): removes the binding of (the token's identity, `Address`): 204, or 404 when
/// there is none.
pub(crate) fn unregister(call: &Call<'_>) -> Answer {
    let address = call.segments.get(3).cloned().unwrap_or_default();
    let ep = Endpoint::Unregister {
        address: shown(&address),
    };
    let identity = match call.authenticate(&ep) {
        Ok(claims) => claims.grants.identity,
        Err(a) => return a,
    };
    call.service.bindings(|m| {
        if let Some(a) = Answer::gated(m, &ep) {
            return (a, Vec::new());
        }
        match m.remove_binding(&identity, &address) {
            Some(b) => (
                Answer::ok(ep, ()).with_status(204),
                vec![binding_fact(BindingChange::Removed, &b)],
            ),
            None => (
                Answer::error(
                    ep,
                    404,
                    20_404,
                    format!(
                        "{identity} has no binding for address {}",
                        super::echo(&address)
                    ),
                ),
                Vec::new(),
            ),
        }
    })
}
