//! The other end of [`super::process`]: any [`Adapter`] served as a JSON-lines process on
//! stdin and stdout (one session: `hello`, then a reply per request and the observations, until
//! stdin closes). `convo-tck reference-adapter` serves the built-in reference client this way,
//! which is how the process path is tested and measured end to end.

use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::protocol::{AdapterMessage, Request, WireOutcome};
use super::{Adapter, AdapterError, AdapterEvent};

async fn write(out: &mut (impl AsyncWrite + Unpin), message: &AdapterMessage) -> bool {
    let Ok(mut line) = serde_json::to_vec(message) else {
        return true;
    };
    line.push(b'\n');
    out.write_all(&line).await.is_ok() && out.flush().await.is_ok()
}

/// Serves one session of `adapter` on this process's stdin and stdout until stdin closes;
/// log lines go to stderr.
pub async fn serve(adapter: &dyn Adapter) -> Result<(), AdapterError> {
    let session = adapter.open().await?;
    let hello = session.hello().clone();
    let (requests, mut events, closer) = session.into_parts();
    let mut stdout = tokio::io::stdout();
    if !write(&mut stdout, &AdapterMessage::Hello(hello)).await {
        return Err(AdapterError::Exited("stdout is closed".into()));
    }
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<Request>(&line) {
                Ok(request) => {
                    if requests.send(request).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let mut err = tokio::io::stderr();
                    let _ = err
                        .write_all(format!("not a request ({e}): {line}\n").as_bytes())
                        .await;
                }
            }
        }
        // Dropping `requests` tells the stack the session is over.
    });
    let pump = async {
        while let Some(event) = events.recv().await {
            let message = match event {
                AdapterEvent::Reply(r) => AdapterMessage::Reply {
                    id: r.id,
                    outcome: WireOutcome::from(&r.outcome),
                },
                AdapterEvent::Observation(o) => AdapterMessage::Observation(o),
                AdapterEvent::Log(line) => {
                    let _ = tokio::io::stderr()
                        .write_all(format!("{line}\n").as_bytes())
                        .await;
                    continue;
                }
                AdapterEvent::Exited(_) | AdapterEvent::Misbehaved(_) => break,
            };
            if !write(&mut stdout, &message).await {
                break;
            }
        }
    };
    tokio::select! {
        () = pump => {}
        _ = reader => {}
    }
    closer.await;
    Ok(())
}
