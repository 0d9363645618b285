//! The backend's two public ports and what listens on them: the real service, nothing (an
//! outage that refuses), or a taker that drops every connection (a half-open outage).
//!
//! Each port is reserved for the backend's whole life by a socket bound with `SO_REUSEPORT`
//! that never listens: while nothing listens the operating system refuses connections, and no
//! other program can take the number, so a restore listens on the same port again.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::BackendError;
use super::fact::Port;
use super::model::Outage;
use super::service::Service;
use super::transport;

/// The two public ports, reserved.
pub(super) struct Ports {
    pub(super) rest: SocketAddr,
    pub(super) events: SocketAddr,
    _reservations: [TcpSocket; 2],
}

fn reusable() -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    Ok(socket)
}

fn reserve_one() -> std::io::Result<(SocketAddr, TcpSocket)> {
    let socket = reusable()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok((socket.local_addr()?, socket))
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = reusable()?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Ports {
    /// Reserves two fresh loopback ports.
    pub(super) fn reserve() -> Result<Self, BackendError> {
        let (rest, a) = reserve_one()?;
        let (events, b) = reserve_one()?;
        Ok(Self {
            rest,
            events,
            _reservations: [a, b],
        })
    }
}

/// One listener task and the switch that stops it.
struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Serving {
    fn spawn<F>(serve: impl FnOnce(transport::Stop) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        Self {
            stop,
            task: tokio::spawn(serve(stopped)),
        }
    }

    /// Stops the listener and waits until every connection it took is closed.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// What listens on the ports now.
pub(super) struct Network {
    ports: Ports,
    wiremock: SocketAddr,
    service: Arc<Service>,
    serving: Vec<Serving>,
    outage: Option<Outage>,
}

impl Network {
    /// Serves the REST front door and the event hub on `ports`.
    pub(super) fn up(
        ports: Ports,
        wiremock: SocketAddr,
        service: Arc<Service>,
    ) -> Result<Self, BackendError> {
        let mut network = Self {
            ports,
            wiremock,
            service,
            serving: Vec::new(),
            outage: None,
        };
        network.serve()?;
        Ok(network)
    }

    fn serve(&mut self) -> Result<(), BackendError> {
        let (front, hub) = (listen(self.ports.rest)?, listen(self.ports.events)?);
        let (service, upstream) = (self.service.clone(), self.wiremock);
        self.serving.push(Serving::spawn(move |stop| {
            transport::front::serve(front, upstream, service, stop)
        }));
        let service = self.service.clone();
        self.serving.push(Serving::spawn(move |stop| {
            transport::hub::serve(hub, service, stop)
        }));
        Ok(())
    }

    fn take_and_drop(&mut self) -> Result<(), BackendError> {
        for (addr, port) in [
            (self.ports.rest, Port::Rest),
            (self.ports.events, Port::Events),
        ] {
            let listener = listen(addr)?;
            let service = self.service.clone();
            self.serving.push(Serving::spawn(move |stop| {
                transport::cut::serve(listener, port, service, stop)
            }));
        }
        Ok(())
    }

    async fn stop_serving(&mut self) {
        for s in std::mem::take(&mut self.serving) {
            s.stop().await;
        }
    }

    /// The outage in force, if any.
    pub(super) fn outage(&self) -> Option<Outage> {
        self.outage
    }

    /// Breaks the network the way `outage` says (after any earlier outage ended).
    pub(super) async fn fail(&mut self, outage: Outage) -> Result<(), BackendError> {
        match outage {
            Outage::Silence => {
                if self.outage.is_some() {
                    self.restore().await?;
                }
                self.service.silence_open_sockets();
            }
            Outage::Refuse => self.stop_serving().await,
            Outage::Drop => {
                self.stop_serving().await;
                self.take_and_drop()?;
            }
        }
        self.outage = Some(outage);
        Ok(())
    }

    /// Serves normally again, on the same ports. (Sockets a silence took stay silent: only the
    /// client can notice and replace them.)
    pub(super) async fn restore(&mut self) -> Result<(), BackendError> {
        match self.outage.take() {
            None | Some(Outage::Silence) => Ok(()),
            Some(Outage::Refuse | Outage::Drop) => {
                self.stop_serving().await;
                self.serve()
            }
        }
    }

    /// Stops every listener now, without waiting (the backend is being dropped).
    pub(super) fn abort(&mut self) {
        for s in self.serving.drain(..) {
            s.task.abort();
        }
    }
}
