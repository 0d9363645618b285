//! Settling: the client answers `settle` once a ping round trip passed with nothing new
//! happening and nothing but virtual-time sleeps in flight.

use super::Engine;
use super::state::SettleWaiter;
use crate::adapter::Responder;
use crate::wire::Ping;

impl Engine {
    fn ping(&mut self) -> Option<u64> {
        let events = self.session.as_ref()?.link.sender()?;
        self.nonce += 1;
        let frame = serde_json::to_string(&Ping { nonce: self.nonce }).ok()?;
        events.send(frame).ok()?;
        Some(self.nonce)
    }

    pub(super) fn begin_settle(&mut self, responder: Responder) {
        let nonce = self.ping();
        self.settling.push(SettleWaiter {
            responder,
            nonce,
            epoch: self.epoch,
        });
    }

    /// The socket the pings went out on is gone: their pongs will never come (the next round
    /// pings again, on the next socket if there is one).
    pub(super) fn forget_pings(&mut self) {
        for w in &mut self.settling {
            w.nonce = None;
        }
    }

    /// A pong came back: every frame sent before its ping has been handled.
    pub(super) fn ponged(&mut self, nonce: u64) {
        for w in &mut self.settling {
            if w.nonce == Some(nonce) {
                w.nonce = None;
            }
        }
    }

    /// Answers every settle whose last ping came back with nothing new happening and nothing
    /// but virtual-time sleeps in flight; re-pings the others.
    pub(super) fn poll_settle(&mut self) {
        if self.settling.is_empty() || !self.activity.is_quiet(self.clock.now()) {
            return;
        }
        for mut w in std::mem::take(&mut self.settling) {
            if w.nonce.is_some() {
                self.settling.push(w);
            } else if w.epoch == self.epoch {
                w.responder.done();
            } else {
                w.epoch = self.epoch;
                w.nonce = self.ping();
                if w.nonce.is_none() {
                    w.responder.done();
                } else {
                    self.settling.push(w);
                }
            }
        }
    }
}
