//! Counts by word. Nearly every word is 16 bytes or shorter, and such a
//! word is kept as one integer of its bytes, which hashes and compares in
//! one step: with the words as strings, half of counting went to hashing
//! them byte by byte and comparing them with `memcmp` (BENCHMARKS.md,
//! fourteenth session on issue 11). Longer words are kept as strings.

use rustc_hash::FxHashMap;

/// The most bytes a word packed into a [`Packed`] has.
pub const PACKED_BYTES: usize = 16;

/// A word of 1 to 16 bytes, its last byte lowest, zero above its first.
/// No word holds a zero byte (words are alphanumeric), so the zeros above
/// it say where it starts.
pub type Packed = u128;

/// Appends `byte` to packed word `word` (of fewer than [`PACKED_BYTES`]).
/// A shift by a constant: wasm has no 128-bit shift, and a shift by a
/// variable one is a call.
pub fn pack_byte(word: Packed, byte: u8) -> Packed {
    word << 8 | Packed::from(byte)
}

/// `word` packed, if it fits and holds no zero byte.
fn pack(word: &str) -> Option<Packed> {
    let bytes = word.as_bytes();
    if bytes.is_empty() || bytes.len() > PACKED_BYTES || bytes.contains(&0) {
        return None;
    }
    Some(bytes.iter().fold(0, |packed, byte| pack_byte(packed, *byte)))
}

/// A word as [`Counts`] hands it out: unpacked into bytes of its own, or
/// the string it is kept as.
pub enum Word<'a> {
    Unpacked([u8; PACKED_BYTES]),
    Long(&'a str),
}

impl Word<'_> {
    fn unpack(word: Packed) -> Self {
        Self::Unpacked(word.to_be_bytes())
    }
}

impl std::ops::Deref for Word<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Self::Unpacked(bytes) => {
                let start = bytes.iter().position(|byte| *byte != 0).unwrap_or(PACKED_BYTES);
                // Packed from a `str` (or from ASCII bytes), so UTF-8.
                std::str::from_utf8(&bytes[start..]).unwrap_or_default()
            }
            Self::Long(word) => word,
        }
    }
}

/// Counts by word, with a hash that is fast for short keys (hash flooding
/// is no concern: the words are the job's own input).
#[derive(Default)]
pub struct Counts {
    packed: FxHashMap<Packed, u64>,
    long: FxHashMap<String, u64>,
}

impl Counts {
    /// Adds `count` to `word`'s, allocating only for a new long word.
    pub fn add(&mut self, word: &str, count: u64) {
        match pack(word) {
            Some(packed) => self.add_packed(packed, count),
            None => match self.long.get_mut(word) {
                Some(total) => *total += count,
                None => {
                    self.long.insert(word.to_owned(), count);
                }
            },
        }
    }

    /// Adds `count` to the count of a word packed with [`pack_byte`].
    pub fn add_packed(&mut self, word: Packed, count: u64) {
        *self.packed.entry(word).or_default() += count;
    }

    /// How many words it counts (some perhaps zero times, after
    /// [`Counts::take_each`]).
    pub fn len(&self) -> usize {
        self.packed.len() + self.long.len()
    }

    /// Every word and its count, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (Word<'_>, u64)> {
        let packed = self.packed.iter().map(|(&word, &count)| (Word::unpack(word), count));
        packed.chain(self.long.iter().map(|(word, &count)| (Word::Long(word), count)))
    }

    /// Calls `each` with every word counted since the last take, and sets
    /// its count back to zero. The words stay, so that counting them again
    /// allocates nothing, until there are more than `keep` of them.
    pub fn take_each(&mut self, keep: usize, mut each: impl FnMut(&str, u64)) {
        for (&word, count) in self.packed.iter_mut().filter(|(_, count)| **count > 0) {
            each(&Word::unpack(word), std::mem::take(count));
        }
        for (word, count) in self.long.iter_mut().filter(|(_, count)| **count > 0) {
            each(word, std::mem::take(count));
        }
        if self.len() > keep {
            *self = Self::default();
        }
    }

    /// Every word and its count, sorted by word.
    pub fn sorted(&self) -> Vec<(String, u64)> {
        let mut sorted: Vec<(String, u64)> = self.iter().map(|(word, count)| (word.to_owned(), count)).collect();
        sorted.sort_unstable();
        sorted
    }
}
