fn main() {
    println!("ibstream {}", env!("CARGO_PKG_VERSION"));
}
