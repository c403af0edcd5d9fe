//! Typed values read from fuzz bytes. Reading past the end yields zeros and empty strings,
//! so every input, however short, is a complete case.

/// A cursor over the input bytes.
pub struct Input<'a> {
    data: &'a [u8],
}

/// Floats IB uses as "no value", the non-finite ones, and edge cases of the models.
const SPECIAL_FLOATS: [f64; 16] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    -1.0,
    -2.0,
    0.0,
    -0.0,
    1e12,
    1e-300,
    1.0,
    100.0,
    0.25,
    1.7976931348623157e308 / 2.0,
];

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    /// The next byte, 0 at the end.
    pub fn byte(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    /// A bool from one byte.
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let src = self.bytes(N);
        out[..src.len()].copy_from_slice(src);
        out
    }

    /// A little-endian i32.
    pub fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.array())
    }

    /// A little-endian i64.
    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }

    /// A float: one byte picks a special value, a small integer, or eight raw bytes.
    pub fn f64(&mut self) -> f64 {
        let tag = self.byte();
        match tag {
            0..=63 => SPECIAL_FLOATS[usize::from(tag) % SPECIAL_FLOATS.len()],
            64..=127 => f64::from(tag - 64) * if tag.is_multiple_of(2) { 1.0 } else { 0.5 },
            _ => f64::from_le_bytes(self.array()),
        }
    }

    /// An optional float.
    pub fn opt_f64(&mut self) -> Option<f64> {
        self.bool().then(|| self.f64())
    }

    /// A string of up to 255 bytes (length byte, then bytes, lossily UTF-8).
    pub fn string(&mut self) -> String {
        let len = usize::from(self.byte());
        String::from_utf8_lossy(self.bytes(len)).into_owned()
    }

    /// Up to `max` strings.
    pub fn strings(&mut self, max: u8) -> Vec<String> {
        let n = self.byte() % (max + 1);
        (0..n).map(|_| self.string()).collect()
    }
}
