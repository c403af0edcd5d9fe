//! How the client subcommands (`quotes`, `chain`, `status`) reach a server: the
//! `--server` / `--api-key` flags, the channel, the bearer-token interceptor, and error
//! messages a user can act on.

use std::path::PathBuf;
use std::time::Duration;

use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::proto::ibstream::v1::connection_service_client::ConnectionServiceClient;
use crate::proto::ibstream::v1::market_data_service_client::MarketDataServiceClient;

/// The server address when neither `--server` nor `IBSTREAM_SERVER` names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";
/// How long establishing the connection may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server is and how to authenticate; shared by every client subcommand.
#[derive(Clone, clap::Args)]
pub struct RemoteArgs {
    /// The ibstream server (`http://host:port`, or `https://…` with TLS).
    #[arg(long, env = "IBSTREAM_SERVER", default_value = DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    /// API key sent as `authorization: Bearer <key>` (not needed on a loopback server
    /// without keys).
    #[arg(
        long,
        env = "IBSTREAM_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// PEM certificate of the CA that signed the server's certificate (for `https://`).
    #[arg(long, env = "IBSTREAM_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for RemoteArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteArgs")
            .field("server", &self.server)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

/// Why the client could not talk to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// `--server` is not a URL tonic can connect to.
    #[error("invalid --server {server:?}: {reason}")]
    InvalidServer { server: String, reason: String },
    /// `--api-key` cannot be sent as a header value.
    #[error("invalid --api-key: it must be printable ASCII")]
    InvalidApiKey,
    /// `--ca-cert` could not be read.
    #[error("cannot read --ca-cert {}: {source}", path.display())]
    CaCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Nothing answered at the address.
    #[error(
        "cannot reach the ibstream server at {server}: {reason} (is it running? start one with `ibstream demo` or `ibstream serve`, or point --server / IBSTREAM_SERVER at it)"
    )]
    Unreachable { server: String, reason: String },
    /// The server answered a call with an error status.
    #[error("{call} failed: {}", describe_status(.status))]
    Call { call: &'static str, status: Status },
}

impl RemoteError {
    /// Wraps a status returned by `call`.
    pub fn call(call: &'static str, status: Status) -> RemoteError {
        RemoteError::Call { call, status }
    }
}

/// A status in words, with a hint for the codes a user can fix.
fn describe_status(status: &Status) -> String {
    let hint = match status.code() {
        tonic::Code::Unauthenticated => {
            " (pass an API key with --api-key or IBSTREAM_API_KEY; create one with `ibstream keys create --scope read`)"
        }
        tonic::Code::PermissionDenied => " (the API key's scope is too small)",
        tonic::Code::Unavailable => {
            " (the server has no IB session right now, or is shutting down)"
        }
        _ => "",
    };
    format!("{:?}: {}{hint}", status.code(), status.message())
}

/// Adds `authorization: Bearer <key>` to every call when a key is configured.
#[derive(Clone, Debug)]
pub struct BearerAuth(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel through the bearer-token interceptor.
pub type AuthChannel = InterceptedService<Channel, BearerAuth>;

/// A connection to one server, from which the service clients are made.
#[derive(Clone, Debug)]
pub struct Remote {
    channel: Channel,
    auth: BearerAuth,
    server: String,
}

impl Remote {
    /// Connects to the server the flags name; fails fast when it is unreachable.
    pub async fn connect(args: &RemoteArgs) -> Result<Remote, RemoteError> {
        let auth = bearer(args.api_key.as_deref())?;
        let endpoint = endpoint(args)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|err| RemoteError::Unreachable {
                server: args.server.clone(),
                reason: error_chain(&err),
            })?;
        Ok(Remote {
            channel,
            auth,
            server: args.server.clone(),
        })
    }

    /// The server's URL as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A `MarketDataService` client.
    pub fn market_data(&self) -> MarketDataServiceClient<AuthChannel> {
        MarketDataServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// A `ConnectionService` client.
    pub fn connection(&self) -> ConnectionServiceClient<AuthChannel> {
        ConnectionServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }
}

fn bearer(api_key: Option<&str>) -> Result<BearerAuth, RemoteError> {
    match api_key.map(str::trim).filter(|k| !k.is_empty()) {
        None => Ok(BearerAuth(None)),
        Some(key) => format!("Bearer {key}")
            .parse::<MetadataValue<Ascii>>()
            .map(|mut value| {
                value.set_sensitive(true);
                BearerAuth(Some(value))
            })
            .map_err(|_| RemoteError::InvalidApiKey),
    }
}

fn endpoint(args: &RemoteArgs) -> Result<Endpoint, RemoteError> {
    let invalid = |reason: String| RemoteError::InvalidServer {
        server: args.server.clone(),
        reason,
    };
    // A bare `host:port` is what people type; treat it as plaintext HTTP/2.
    let url = if args.server.contains("://") {
        args.server.clone()
    } else {
        format!("http://{}", args.server)
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|err| invalid(error_chain(&err)))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path).map_err(|source| RemoteError::CaCert {
                path: path.clone(),
                source,
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|err| invalid(error_chain(&err)))?;
    }
    Ok(endpoint)
}

/// An error and its sources on one line (tonic's transport error alone says only
/// "transport error").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(server: &str, key: Option<&str>) -> RemoteArgs {
        RemoteArgs {
            server: server.into(),
            api_key: key.map(String::from),
            ca_cert: None,
        }
    }

    #[test]
    fn bearer_header_is_added_only_with_a_key() {
        let mut with = bearer(Some("ibs_abc.def")).unwrap();
        let req = with.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            req.metadata().get("authorization").unwrap(),
            "Bearer ibs_abc.def"
        );
        let mut without = bearer(None).unwrap();
        let req = without.call(tonic::Request::new(())).unwrap();
        assert!(req.metadata().get("authorization").is_none());
        assert!(bearer(Some("   ")).unwrap().0.is_none());
    }

    #[test]
    fn api_key_never_shows_in_debug_output() {
        let text = format!("{:?}", args(DEFAULT_SERVER, Some("ibs_secret.value")));
        assert!(!text.contains("secret"), "{text}");
        let header = bearer(Some("ibs_secret.value")).unwrap();
        assert!(!format!("{header:?}").contains("secret"));
    }

    #[test]
    fn bare_host_port_is_accepted_and_garbage_is_refused() {
        assert!(endpoint(&args("127.0.0.1:50051", None)).is_ok());
        let err = endpoint(&args("http://exa mple:1", None)).unwrap_err();
        assert!(err.to_string().contains("invalid --server"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_server_says_how_to_fix_it() {
        // Bind then drop a listener so the port is very likely closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = Remote::connect(&args(&format!("http://127.0.0.1:{port}"), None))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cannot reach the ibstream server"), "{text}");
        assert!(text.contains("ibstream demo"), "{text}");
    }

    #[test]
    fn unauthenticated_status_hints_at_api_keys() {
        let err = RemoteError::call("GetStatus", Status::unauthenticated("missing key"));
        let text = err.to_string();
        assert!(text.contains("Unauthenticated: missing key"), "{text}");
        assert!(text.contains("--api-key"), "{text}");
    }
}
