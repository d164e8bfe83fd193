//! Words and their counts: a word is a maximal run of alphanumeric
//! characters, lower-cased; counts travel between tasks, and are kept in
//! checkpoints, as `word count` lines.

pub use crate::counts::Counts;
use crate::counts::{PACKED_BYTES, pack_byte};

/// Adds the words of `text` to `counts`. ASCII text, the common case, is
/// read in one pass over its bytes, which packs each word, lower-cased, as
/// it goes: a word allocates only if it is new and longer than 16 bytes.
pub fn count_words(text: &[u8], counts: &mut Counts) {
    let Some(text) = std::str::from_utf8(text).ok().filter(|text| text.is_ascii()) else {
        return count_words_unicode(&String::from_utf8_lossy(text), counts);
    };
    let mut long = String::new();
    let (mut start, mut packed, mut length) = (0, 0, 0);
    // A separator after the text ends its last word.
    for (at, byte) in text.bytes().chain([b' ']).enumerate() {
        if byte.is_ascii_alphanumeric() {
            if length < PACKED_BYTES {
                packed = pack_byte(packed, byte.to_ascii_lowercase());
            }
            length += 1;
            continue;
        }
        if length > PACKED_BYTES {
            long.clear();
            long.push_str(&text[start..at]);
            long.make_ascii_lowercase();
            counts.add(&long, 1);
        } else if length > 0 {
            counts.add_packed(packed, 1);
        }
        (start, packed, length) = (at + 1, 0, 0);
    }
}

/// [`count_words`] for text that is not all ASCII: alphanumeric and
/// lower-case as Unicode says.
fn count_words_unicode(text: &str, counts: &mut Counts) {
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        if word.chars().any(char::is_uppercase) {
            counts.add(&word.to_lowercase(), 1);
        } else {
            counts.add(word, 1);
        }
    }
}

/// Appends `word count` as a line to `out`.
pub fn encode(out: &mut Vec<u8>, word: &str, count: u64) {
    out.extend_from_slice(word.as_bytes());
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
    out.push(b'\n');
}

/// Encodes all of `counts`.
pub fn encode_all(counts: &Counts) -> Vec<u8> {
    let mut out = Vec::new();
    for (word, count) in counts.iter() {
        encode(&mut out, &word, count);
    }
    out
}

/// Adds the `word count` lines of `bytes` to `counts`.
///
/// # Errors
///
/// If a line is not `word count`.
pub fn decode_into(bytes: &[u8], counts: &mut Counts) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|error| format!("counts are not UTF-8: {error}"))?;
    for line in text.lines() {
        let parsed = line.rsplit_once(' ').and_then(|(word, count)| Some((word, count.parse().ok()?)));
        let (word, count) = parsed.ok_or_else(|| format!("`{line}` is not `word count`"))?;
        counts.add(word, count);
    }
    Ok(())
}

/// Which of `consumers` counts `word` (FNV-1a of its bytes): the same
/// for every task.
pub fn partition(word: &str, consumers: usize) -> usize {
    let hash = word
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    (hash % consumers as u64) as usize
}
