//! Session commands on any node act on the cluster's one session: a node that does not
//! lead forwards Connect, Disconnect and Reconnect to the leader, which alone answers
//! on the admin subject while it leads.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use futures::StreamExt;
use futures::future::BoxFuture;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use super::BusError;
use super::subjects::Subjects;
use super::wire;
use crate::proto::ibstream::cluster::v1 as pb;
use crate::proto::ibstream::v1 as api;

/// A command on the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOp {
    Connect,
    Disconnect,
    Reconnect,
}

/// Why a forwarded command has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("no node leads the cluster now; try again in a few seconds")]
    NoLeader,
    #[error("the cluster's leader did not answer: {0}")]
    Unanswered(String),
    /// The leader refused, with a gRPC status code.
    #[error("{message}")]
    Refused { code: i32, message: String },
}

/// How the leader carries out a command: the session's status afterwards, or a gRPC
/// status code and message.
pub type Handler = Arc<
    dyn Fn(SessionOp) -> BoxFuture<'static, Result<api::ConnectionStatus, (i32, String)>>
        + Send
        + Sync,
>;

/// How long a forwarded command may take: a connect waits for the gateway's handshake.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `op` to the leader and returns its session's status afterwards.
pub async fn forward(
    client: &Client,
    subjects: &Subjects,
    node: &str,
    op: SessionOp,
) -> Result<api::ConnectionStatus, ForwardError> {
    let request = pb::AdminRequest {
        op: op_to_pb(op).into(),
        node: node.to_owned(),
    };
    let asked = client.request(subjects.admin(), request.encode_to_vec().into());
    let reply = match tokio::time::timeout(FORWARD_TIMEOUT, asked).await {
        Err(_) => return Err(ForwardError::Unanswered("timed out".into())),
        Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {
            return Err(ForwardError::NoLeader);
        }
        Ok(Err(e)) => return Err(ForwardError::Unanswered(e.to_string())),
        Ok(Ok(reply)) => reply,
    };
    let reply = wire::decode::<pb::AdminReply>(&reply.payload)
        .map_err(|e| ForwardError::Unanswered(e.to_string()))?;
    match reply.result {
        Some(pb::admin_reply::Result::Status(bytes)) => {
            api::ConnectionStatus::decode(bytes.as_slice())
                .map_err(|e| ForwardError::Unanswered(format!("undecodable status: {e}")))
        }
        Some(pb::admin_reply::Result::Error(e)) => Err(ForwardError::Refused {
            code: e.code,
            message: e.message,
        }),
        None => Err(ForwardError::Unanswered("an empty reply".into())),
    }
}

/// Answers forwarded commands while this node leads; dropping it stops answering.
pub struct AdminServer {
    cancel: CancellationToken,
}

impl AdminServer {
    /// Starts answering on the cluster's admin subject.
    pub async fn start(
        client: Client,
        cluster: &str,
        handler: Handler,
    ) -> Result<AdminServer, BusError> {
        let subjects = Subjects::new(cluster)?;
        let mut sub = client
            .subscribe(subjects.admin())
            .await
            .map_err(|e| BusError::Bus(e.to_string()))?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    msg = sub.next() => match msg { Some(msg) => msg, None => return },
                };
                let Some(reply_to) = msg.reply else { continue };
                let (client, handler) = (client.clone(), handler.clone());
                // One at a time would let a slow connect hold up a disconnect.
                tokio::spawn(async move {
                    let reply = answer(&handler, &msg.payload).await;
                    let _ = client.publish(reply_to, reply.encode_to_vec().into()).await;
                });
            }
        });
        Ok(AdminServer { cancel })
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn answer(handler: &Handler, payload: &[u8]) -> pb::AdminReply {
    let refuse = |code: tonic::Code, message: String| pb::AdminReply {
        result: Some(pb::admin_reply::Result::Error(pb::AdminError {
            code: code as i32,
            message,
        })),
    };
    let request = match wire::decode::<pb::AdminRequest>(payload) {
        Ok(r) => r,
        Err(e) => return refuse(tonic::Code::InvalidArgument, e.to_string()),
    };
    let Some(op) = op_from_pb(request.op) else {
        return refuse(
            tonic::Code::InvalidArgument,
            format!("op: unknown session command {}", request.op),
        );
    };
    tracing::info!(
        ?op,
        from = request.node.as_str(),
        "session command from another node"
    );
    match handler(op).await {
        Ok(status) => pb::AdminReply {
            result: Some(pb::admin_reply::Result::Status(status.encode_to_vec())),
        },
        Err((code, message)) => pb::AdminReply {
            result: Some(pb::admin_reply::Result::Error(pb::AdminError {
                code,
                message,
            })),
        },
    }
}

fn op_to_pb(op: SessionOp) -> pb::admin_request::Op {
    match op {
        SessionOp::Connect => pb::admin_request::Op::Connect,
        SessionOp::Disconnect => pb::admin_request::Op::Disconnect,
        SessionOp::Reconnect => pb::admin_request::Op::Reconnect,
    }
}

fn op_from_pb(op: i32) -> Option<SessionOp> {
    match pb::admin_request::Op::try_from(op).ok()? {
        pb::admin_request::Op::Connect => Some(SessionOp::Connect),
        pb::admin_request::Op::Disconnect => Some(SessionOp::Disconnect),
        pb::admin_request::Op::Reconnect => Some(SessionOp::Reconnect),
        pb::admin_request::Op::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler() -> Handler {
        Arc::new(|op| {
            Box::pin(async move {
                match op {
                    SessionOp::Connect => Ok(api::ConnectionStatus {
                        client_id: 7,
                        ..Default::default()
                    }),
                    _ => Err((tonic::Code::Unavailable as i32, "not connected".into())),
                }
            })
        })
    }

    fn refused(reply: pb::AdminReply) -> pb::AdminError {
        match reply.result {
            Some(pb::admin_reply::Result::Error(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn hostile_or_unknown_commands_are_refused_as_invalid() {
        for payload in [
            b"\xff\xff\xff".to_vec(),
            pb::AdminRequest {
                op: 99,
                node: "n".into(),
            }
            .encode_to_vec(),
            pb::AdminRequest::default().encode_to_vec(),
        ] {
            let e = refused(answer(&handler(), &payload).await);
            assert_eq!(e.code, tonic::Code::InvalidArgument as i32, "{}", e.message);
        }
    }

    #[tokio::test]
    async fn the_leaders_answer_and_refusal_travel_as_they_were() {
        let connect = pb::AdminRequest {
            op: pb::admin_request::Op::Connect.into(),
            node: "n2".into(),
        };
        match answer(&handler(), &connect.encode_to_vec()).await.result {
            Some(pb::admin_reply::Result::Status(bytes)) => {
                let status = api::ConnectionStatus::decode(bytes.as_slice()).unwrap();
                assert_eq!(status.client_id, 7);
            }
            other => panic!("{other:?}"),
        }
        let disconnect = pb::AdminRequest {
            op: pb::admin_request::Op::Disconnect.into(),
            node: "n2".into(),
        };
        let e = refused(answer(&handler(), &disconnect.encode_to_vec()).await);
        assert_eq!(e.code, tonic::Code::Unavailable as i32);
        assert_eq!(e.message, "not connected");
    }
}
