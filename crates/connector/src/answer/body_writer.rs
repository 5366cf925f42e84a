//! Writes answer bodies straight into byte buffers: RFC 3339 times, numbers and strings the way
//! `serde_json` writes the data model's types, but without building a value per sample, and
//! cut into chunks of at most [`MAX_CHUNK_BYTES`] at record boundaries.

use std::collections::VecDeque;

use chrono::SecondsFormat;
use uplink_link::MAX_CHUNK_BYTES;
use uplink_model::time_expr::from_micros;
use uplink_model::{Sample, Status, Tag, TagValue};

/// A chunk is handed over once it holds this much, leaving room for the next record.
const TARGET_BYTES: usize = MAX_CHUNK_BYTES - 512;

/// Accumulates records and hands out chunks that never exceed [`MAX_CHUNK_BYTES`] and never cut
/// a record unless the record alone is larger than a chunk.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    buf: Vec<u8>,
    ready: VecDeque<String>,
    date: DateCache,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(MAX_CHUNK_BYTES),
            ready: VecDeque::new(),
            date: DateCache::default(),
        }
    }
}

impl ChunkWriter {
    /// Writes one record with `write`, then moves full chunks to the ready queue.
    #[inline]
    pub fn record(&mut self, write: impl FnOnce(&mut Vec<u8>, &mut DateCache)) {
        let mark = self.buf.len();
        write(&mut self.buf, &mut self.date);
        if self.buf.len() > MAX_CHUNK_BYTES {
            if mark > 0 {
                let rest = self.buf.split_off(mark);
                self.emit();
                self.buf = rest;
            }
            while self.buf.len() > MAX_CHUNK_BYTES {
                let cut = char_boundary_at_most(&self.buf, MAX_CHUNK_BYTES);
                let rest = self.buf.split_off(cut);
                self.emit();
                self.buf = rest;
            }
        }
        if self.buf.len() >= TARGET_BYTES {
            self.emit();
        }
    }

    /// Writes bytes that belong to no record (brackets, separators).
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.record(|buf, _| buf.extend_from_slice(bytes));
    }

    /// The next full chunk, if one is ready.
    pub fn take_ready(&mut self) -> Option<String> {
        self.ready.pop_front()
    }

    /// Hands over whatever is left as a last chunk.
    pub fn finish(&mut self) {
        if !self.buf.is_empty() {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(MAX_CHUNK_BYTES));
        // Only whole UTF-8 sequences are ever written, and cuts fall on char boundaries.
        let text = String::from_utf8(full).expect("answer bodies are UTF-8");
        self.ready.push_back(text);
    }
}

fn char_boundary_at_most(bytes: &[u8], at: usize) -> usize {
    let mut cut = at.min(bytes.len());
    while cut > 0 && cut < bytes.len() && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    cut
}

/// The `YYYY-MM-DDT` prefix of the last day written: consecutive samples mostly share it.
#[derive(Debug)]
pub(crate) struct DateCache {
    day: i64,
    prefix: [u8; 11],
}

impl Default for DateCache {
    fn default() -> Self {
        Self {
            day: i64::MIN,
            prefix: [0; 11],
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[inline]
fn two(buf: &mut Vec<u8>, n: u32) {
    let i = (n as usize) * 2;
    buf.extend_from_slice(&DIGITS2[i..i + 2]);
}

/// Writes `"…"`: the instant as RFC 3339 UTC with 0, 3 or 6 fraction digits, exactly as
/// `to_rfc3339_opts(SecondsFormat::AutoSi, true)` does.
#[inline]
pub(crate) fn time(buf: &mut Vec<u8>, date: &mut DateCache, time_us: i64) {
    let secs = time_us.div_euclid(1_000_000);
    let micros = time_us.rem_euclid(1_000_000) as u32;
    let day = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400) as u32;
    if day != date.day {
        let (year, month, dom) = civil_from_days(day);
        if !(0..=9999).contains(&year) {
            let text = from_micros(time_us).to_rfc3339_opts(SecondsFormat::AutoSi, true);
            buf.push(b'"');
            buf.extend_from_slice(text.as_bytes());
            buf.push(b'"');
            return;
        }
        let mut prefix = Vec::with_capacity(11);
        two(&mut prefix, (year / 100) as u32);
        two(&mut prefix, (year % 100) as u32);
        prefix.push(b'-');
        two(&mut prefix, month);
        prefix.push(b'-');
        two(&mut prefix, dom);
        prefix.push(b'T');
        date.prefix.copy_from_slice(&prefix);
        date.day = day;
    }
    buf.push(b'"');
    buf.extend_from_slice(&date.prefix);
    two(buf, second_of_day / 3600);
    buf.push(b':');
    two(buf, second_of_day / 60 % 60);
    buf.push(b':');
    two(buf, second_of_day % 60);
    if micros != 0 {
        buf.push(b'.');
        if micros.is_multiple_of(1000) {
            let millis = micros / 1000;
            buf.push(b'0' + (millis / 100) as u8);
            two(buf, millis % 100);
        } else {
            two(buf, micros / 10_000);
            two(buf, micros / 100 % 100);
            two(buf, micros % 100);
        }
    }
    buf.extend_from_slice(b"Z\"");
}

/// Writes a finite number as `serde_json` does (shortest round-trip form, `1.0` for integers).
#[inline]
pub(crate) fn number(buf: &mut Vec<u8>, value: f64) {
    let mut digits = zmij::Buffer::new();
    buf.extend_from_slice(digits.format_finite(value).as_bytes());
}

/// Writes an unsigned integer.
#[inline]
pub(crate) fn integer(buf: &mut Vec<u8>, value: u64) {
    let mut digits = itoa::Buffer::new();
    buf.extend_from_slice(digits.format(value).as_bytes());
}

/// Writes a JSON string, escaped as `serde_json` escapes it.
#[inline]
pub(crate) fn string(buf: &mut Vec<u8>, text: &str) {
    let plain = text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        buf.push(b'"');
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, text).expect("writing to memory cannot fail");
    }
}

fn status(buf: &mut Vec<u8>, status: Status) {
    buf.extend_from_slice(match status {
        Status::Good => b"\"good\"",
        Status::Uncertain => b"\"uncertain\"",
        Status::Bad => b"\"bad\"",
    });
}

/// Writes a sample's fields without braces: `"time":…,"value":…,"status":…` and the source's
/// own `"sourceStatusCode"` when it has one (no value when it is not finite), as `serde_json`
/// writes [`TagValue::from`] the [`Sample`].
#[inline]
pub(crate) fn sample_fields(buf: &mut Vec<u8>, date: &mut DateCache, sample: &Sample) {
    buf.extend_from_slice(b"\"time\":");
    time(buf, date, sample.time_us);
    if sample.value.is_finite() {
        buf.extend_from_slice(b",\"value\":");
        number(buf, sample.value);
    }
    buf.extend_from_slice(b",\"status\":");
    status(buf, sample.status);
    if sample.source_code != 0 {
        buf.extend_from_slice(b",\"sourceStatusCode\":");
        integer(buf, u64::from(sample.source_code));
    }
}

/// Writes a value's fields without braces, as `serde_json` writes a [`TagValue`].
pub(crate) fn tag_value_fields(buf: &mut Vec<u8>, date: &mut DateCache, value: &TagValue) {
    buf.extend_from_slice(b"\"time\":");
    time(buf, date, uplink_model::time_expr::to_micros(value.time));
    if let Some(number_value) = value.value {
        buf.extend_from_slice(b",\"value\":");
        if number_value.is_finite() {
            number(buf, number_value);
        } else {
            buf.extend_from_slice(b"null");
        }
    }
    if let Some(text) = &value.text {
        buf.extend_from_slice(b",\"text\":");
        string(buf, text);
    }
    buf.extend_from_slice(b",\"status\":");
    status(buf, value.status);
    if let Some(units) = &value.units {
        buf.extend_from_slice(b",\"units\":");
        string(buf, units);
    }
    if let Some(code) = value.source_status_code {
        buf.extend_from_slice(b",\"sourceStatusCode\":");
        integer(buf, u64::from(code));
    }
}

/// Writes a tag as `serde_json` does (tags are few; no need to hand-write them).
pub(crate) fn tag(buf: &mut Vec<u8>, tag: &Tag) {
    serde_json::to_writer(&mut *buf, tag).expect("writing to memory cannot fail");
}

#[cfg(test)]
mod tests {
    use chrono::{SecondsFormat, TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;

    fn written_time(time_us: i64) -> String {
        let mut buf = Vec::new();
        time(&mut buf, &mut DateCache::default(), time_us);
        String::from_utf8(buf).unwrap()
    }

    fn chrono_time(time_us: i64) -> String {
        format!(
            "\"{}\"",
            from_micros(time_us).to_rfc3339_opts(SecondsFormat::AutoSi, true)
        )
    }

    #[test]
    fn times_match_chrono_with_every_fraction_length() {
        let base = Utc
            .with_ymd_and_hms(2024, 2, 29, 23, 59, 59)
            .unwrap()
            .timestamp_micros();
        for offset in [0, 1_000, 123_000, 1, 1_500, 999_999] {
            assert_eq!(written_time(base + offset), chrono_time(base + offset));
        }
        assert_eq!(written_time(0), "\"1970-01-01T00:00:00Z\"");
        assert_eq!(written_time(-1), chrono_time(-1));
    }

    #[test]
    fn the_date_cache_follows_day_changes_both_ways() {
        let mut buf = Vec::new();
        let mut cache = DateCache::default();
        let day = 86_400_000_000;
        for t in [day * 19_000, day * 19_001 - 1, day * 19_001, day * 18_999] {
            buf.clear();
            time(&mut buf, &mut cache, t);
            assert_eq!(String::from_utf8(buf.clone()).unwrap(), chrono_time(t));
        }
    }

    #[test]
    fn strings_escape_like_serde_json() {
        for text in [
            "plain",
            "quote \" and \\ slash",
            "tab\tnew\nline",
            "Größe °C",
            "\u{1}",
        ] {
            let mut buf = Vec::new();
            string(&mut buf, text);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
    }

    #[test]
    fn a_sample_with_the_sources_own_code_is_written_as_its_tag_value() {
        let coded = Sample {
            source_code: 0x408F_0000,
            ..Sample::good(1_714_550_400_000_000, 3.25)
        };
        for sample in [
            coded,
            Sample::good(1_714_550_400_000_000, 3.25),
            Sample::bad(5),
        ] {
            let mut buf = vec![b'{'];
            sample_fields(&mut buf, &mut DateCache::default(), &sample);
            buf.push(b'}');
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&TagValue::from(sample)).unwrap()
            );
        }
        let mut buf = Vec::new();
        sample_fields(&mut buf, &mut DateCache::default(), &coded);
        assert!(
            String::from_utf8(buf)
                .unwrap()
                .ends_with(",\"sourceStatusCode\":1083113472")
        );
    }

    #[test]
    fn a_value_with_the_sources_own_code_is_written_like_serde_json() {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
        for value in [
            TagValue::number(at, 1.5)
                .with_status(uplink_model::Status::Bad)
                .with_source_status_code(0x808C_0000)
                .with_units("bar"),
            TagValue::number(at, 2.0),
        ] {
            let mut buf = Vec::new();
            buf.push(b'{');
            tag_value_fields(&mut buf, &mut DateCache::default(), &value);
            buf.push(b'}');
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
        }
    }

    #[test]
    fn a_record_larger_than_a_chunk_is_cut_on_char_boundaries() {
        let mut writer = ChunkWriter::default();
        let big = "é".repeat(MAX_CHUNK_BYTES); // two bytes each
        writer.raw(b"[");
        writer.record(|buf, _| string(buf, &big));
        writer.raw(b"]");
        writer.finish();
        let mut chunks = Vec::new();
        while let Some(chunk) = writer.take_ready() {
            assert!(chunk.len() <= MAX_CHUNK_BYTES, "{}", chunk.len());
            chunks.push(chunk);
        }
        assert!(chunks.len() >= 2);
        assert_eq!(
            chunks[0], "[",
            "the small record before is not glued to the big one"
        );
        let whole: String = chunks.concat();
        assert_eq!(whole, format!("[{}]", serde_json::to_string(&big).unwrap()));
    }

    proptest! {
        #[test]
        fn any_time_matches_chrono(time_us in -62_135_596_800_000_000i64..253_402_300_799_999_999) {
            prop_assert_eq!(written_time(time_us), chrono_time(time_us));
        }

        #[test]
        fn any_number_matches_serde_json(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let mut buf = Vec::new();
            number(&mut buf, value);
            prop_assert_eq!(String::from_utf8(buf).unwrap(), serde_json::to_string(&value).unwrap());
        }
    }
}
