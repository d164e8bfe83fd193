//! Words and their counts: a word is a maximal run of alphanumeric
//! characters, lower-cased; counts travel between tasks, and are kept in
//! checkpoints, as `word count` lines.

use std::fmt::Write;

/// Counts by word, with a hash that is fast for short keys (hash flooding
/// is no concern: the words are the job's own input).
pub type Counts = rustc_hash::FxHashMap<String, u64>;

/// Adds the words of `text` to `counts`. ASCII text, the common case, is
/// read byte by byte without allocating but for new words.
pub fn count_words(text: &[u8], counts: &mut Counts) {
    if !text.is_ascii() {
        return count_words_unicode(&String::from_utf8_lossy(text), counts);
    }
    let mut lower = String::new();
    for word in text.split(|byte| !byte.is_ascii_alphanumeric()).filter(|word| !word.is_empty()) {
        // ASCII, so UTF-8.
        let word = std::str::from_utf8(word).unwrap_or_default();
        if word.bytes().any(|byte| byte.is_ascii_uppercase()) {
            lower.clear();
            lower.push_str(word);
            lower.make_ascii_lowercase();
            add(counts, &lower, 1);
        } else {
            add(counts, word, 1);
        }
    }
}

/// [`count_words`] for text that is not all ASCII: alphanumeric and
/// lower-case as Unicode says.
fn count_words_unicode(text: &str, counts: &mut Counts) {
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        if word.chars().any(char::is_uppercase) {
            add(counts, &word.to_lowercase(), 1);
        } else {
            add(counts, word, 1);
        }
    }
}

/// Adds `count` to `word`'s count, allocating only for a new word.
pub fn add(counts: &mut Counts, word: &str, count: u64) {
    match counts.get_mut(word) {
        Some(total) => *total += count,
        None => {
            counts.insert(word.to_owned(), count);
        }
    }
}

/// Appends `word count` as a line to `out`.
pub fn encode(out: &mut Vec<u8>, word: &str, count: u64) {
    out.extend_from_slice(word.as_bytes());
    out.push(b' ');
    let mut digits = String::new();
    let _ = write!(digits, "{count}");
    out.extend_from_slice(digits.as_bytes());
    out.push(b'\n');
}

/// Encodes all of `counts`.
pub fn encode_all(counts: &Counts) -> Vec<u8> {
    let mut out = Vec::new();
    for (word, count) in counts {
        encode(&mut out, word, *count);
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
        add(counts, word, count);
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
