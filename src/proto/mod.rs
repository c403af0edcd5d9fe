//! Code generated from `proto/` by `build.rs`, and the codec it runs on.
//!
//! - [`codec`]: prost encoding, undecodable requests answered `INVALID_ARGUMENT`.
//! - [`frames`]: stream responses written from bytes encoded once for many streams.
//! - [`tws`], [`ibsim`], [`ibstream`]: the generated messages, services and clients.

pub mod codec;
pub mod frames;

/// The TWS API messages the simulated gateway speaks (field numbers are protocol facts).
pub mod tws {
    include!(concat!(env!("OUT_DIR"), "/tws.rs"));
}

/// The simulated gateway's control plane.
pub mod ibsim {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/ibsim.v1.rs"));
    }
}

/// The public contract of ibstream.
pub mod ibstream {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/ibstream.v1.rs"));
        // The server of MarketDataService, generated apart (see build.rs).
        include!(concat!(
            env!("OUT_DIR"),
            "/ibstream.v1.MarketDataService.rs"
        ));
    }
    /// What the nodes of a cluster send each other over NATS (see `crate::cluster::wire`).
    pub mod cluster {
        // Replies whose oneof holds a whole value are built, sent and dropped, never
        // kept: their size does not matter.
        #[allow(clippy::large_enum_variant)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/ibstream.cluster.v1.rs"));
        }
    }
}

/// Encoded `FileDescriptorSet` of every file in `proto/`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
