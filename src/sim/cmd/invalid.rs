//! Requests the simulator does not serve or cannot decode, and what it answers to them:
//! an unknown id (or a text-era frame) is skipped, as by a gateway that ignores what it
//! does not know; an undecodable payload gets error 320 and the connection keeps serving.

use tracing::warn;

use super::kind::RequestKind;
use crate::sim::state::Outbox;

/// A request that cannot be served.
#[derive(Debug)]
pub(crate) enum Invalid {
    /// A message id the simulator does not serve.
    Unsupported { wire_id: i32 },
    /// A known request whose payload does not decode.
    Malformed {
        kind: RequestKind,
        /// Tag 1 when the request carries a request id and it could be read, else −1.
        req_id: i32,
        error: prost::DecodeError,
    },
}

impl Invalid {
    /// The request kind, when the id is one the simulator serves.
    pub(crate) fn kind(&self) -> Option<RequestKind> {
        match self {
            Invalid::Unsupported { .. } => None,
            Invalid::Malformed { kind, .. } => Some(*kind),
        }
    }
}

/// Answers an invalid request; `false` when the connection is gone.
pub(crate) async fn answer(out: &Outbox, invalid: Invalid) -> bool {
    match invalid {
        Invalid::Unsupported { wire_id } => {
            warn!(wire_id, "ignoring unsupported message id");
            true
        }
        Invalid::Malformed { kind, error, .. } => {
            let name = kind.name();
            warn!(request = name, %error, "malformed request");
            let msg = format!("Error reading request. Malformed {name}: {error}");
            out.error(-1, 320, &msg).await
        }
    }
}
