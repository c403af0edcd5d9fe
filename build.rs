//! Compiles every `.proto` under `proto/` with protox (pure Rust), so the build needs no
//! system `protoc`. The descriptor set is kept for gRPC reflection.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect_protos(root, &mut files)?;
    files.sort();

    let fds = protox::compile(&files, [root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // ConnectionService has a `Connect` RPC, whose generated method would collide
        // with the transport constructor `connect(endpoint)`: clients are built with
        // `XClient::new(channel)` instead.
        .build_transport(false)
        // Undecodable requests are the caller's mistake, not an internal error.
        .codec_path("crate::proto::codec::ProtoCodec")
        // A status is rare beside the bars of a bar stream: boxed, every bar event stays
        // the size of a bar.
        .boxed(".ibstream.v1.StreamBarsResponse.event.status")
        .compile_fds(fds.clone())?;
    // MarketDataService's server is generated again, with frames as StreamQuotes'
    // responses; its client stays the one generated above.
    drop_generated_module(&out.join("ibstream.v1.rs"), "market_data_service_server")?;
    market_data_server(&fds)?;
    Ok(())
}

/// Removes `pub mod <name> { … }` from a generated file (tonic offers no per-service
/// switch); fails the build if the module is not where tonic puts it.
fn drop_generated_module(file: &Path, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let code = std::fs::read_to_string(file)?;
    let head = format!("\npub mod {name} {{\n");
    let start = code
        .find(&head)
        .ok_or_else(|| format!("{} has no module {name}", file.display()))?;
    // prettyplease closes a top-level module with a `}` alone at the start of a line.
    let end = code[start + head.len()..]
        .find("\n}\n")
        .map(|i| start + head.len() + i + 2)
        .ok_or_else(|| format!("module {name} in {} does not end", file.display()))?;
    let doc = code[..start]
        .rfind("\n///")
        .filter(|d| !code[*d + 1..start].contains("\n\n"));
    std::fs::write(
        file,
        format!("{}{}", &code[..doc.unwrap_or(start)], &code[end..]),
    )?;
    Ok(())
}

/// MarketDataService's server from its descriptor, every method as in the proto except
/// that StreamQuotes sends `QuotesFrame`s: responses whose quote was encoded once and
/// is shared by every stream sending it (the bytes on the wire are the same).
fn market_data_server(
    fds: &prost_types::FileDescriptorSet,
) -> Result<(), Box<dyn std::error::Error>> {
    use tonic_build::manual::{Method, Service};
    let service = fds
        .file
        .iter()
        .filter(|f| f.package() == "ibstream.v1")
        .flat_map(|f| &f.service)
        .find(|s| s.name() == "MarketDataService")
        .ok_or("proto/ has no ibstream.v1.MarketDataService")?;
    let mut builder = Service::builder()
        .name("MarketDataService")
        .package("ibstream.v1");
    for m in &service.method {
        let (output, codec) = match m.name() {
            "StreamQuotes" => (
                "crate::proto::frames::QuotesFrame".to_owned(),
                "crate::proto::codec::FrameCodec",
            ),
            _ => (
                rust_path(m.output_type())?,
                "crate::proto::codec::ProtoCodec",
            ),
        };
        let mut method = Method::builder()
            .name(snake_case(m.name()))
            .route_name(m.name())
            .input_type(rust_path(m.input_type())?)
            .output_type(output)
            .codec_path(codec);
        if m.server_streaming() {
            method = method.server_streaming();
        }
        if m.client_streaming() {
            method = method.client_streaming();
        }
        builder = builder.method(method.build());
    }
    tonic_build::manual::Builder::new()
        .build_client(false)
        .build_transport(false)
        .compile(&[builder.build()]);
    Ok(())
}

/// `.ibstream.v1.Quote` → `crate::proto::ibstream::v1::Quote`.
fn rust_path(proto: &str) -> Result<String, String> {
    let name = proto
        .strip_prefix(".ibstream.v1.")
        .ok_or_else(|| format!("{proto} is outside ibstream.v1"))?;
    Ok(format!("crate::proto::ibstream::v1::{name}"))
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn collect_protos(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path);
        }
    }
    Ok(())
}
