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
        .compile_fds(fds)?;
    Ok(())
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
