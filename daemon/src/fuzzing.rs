//! Checks shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`, run with cargo-fuzz on nightly)
//! and by the corpus replay test (`daemon/tests/fuzz_corpus.rs`, run by `cargo test` on stable).
//!
//! Each function takes the raw fuzzer input, feeds it to one parser or detector and panics when
//! that code panics or when one of the invariants listed on the function does not hold. They
//! never touch the file system beyond what the parser itself does, and each returns quickly.

use crate::config::Config;
use crate::ctl::proto::{CtlRequest, CtlResponse};
use cardpbx_dsp::dtmf::{DtmfConfig, DtmfDetector, DtmfEvent};

/// The file name configurations are parsed under; errors must name it.
pub const CONFIG_FILE_NAME: &str = "fuzz.toml";

/// Feed `data` (as text, invalid UTF-8 replaced) to [`Config::parse_str`].
///
/// Invariants:
/// - an accepted configuration has no [`Config::validate`] errors (the loader ran the same
///   checks), and serialised back to TOML it parses again to the same value;
/// - a rejected one carries at least one error, each naming [`CONFIG_FILE_NAME`], with a
///   non-empty message, line and column both 0 or both at least 1, the line within the text.
///
/// Inputs that set `system.include_dir` are skipped: the loader would read directories of
/// the machine, which a fuzzer must not depend on.
///
/// Returns whether the configuration was accepted (`None` when skipped).
pub fn check_config(data: &[u8]) -> Option<bool> {
    let text = String::from_utf8_lossy(data);
    if sets_include_dir(&text) {
        return None;
    }
    let accepted = match Config::parse_str(&text, CONFIG_FILE_NAME) {
        Ok(cfg) => {
            let problems = cfg.validate();
            assert!(problems.is_empty(), "accepted configuration fails validate(): {problems:?}");
            let again = toml::to_string(&cfg)
                .unwrap_or_else(|e| panic!("accepted configuration does not serialise: {e}"));
            match Config::parse_str(&again, CONFIG_FILE_NAME) {
                Ok(back) => assert_eq!(back, cfg, "configuration changed on a TOML round trip"),
                Err(e) => panic!("re-serialised configuration is rejected: {e}\n{again}"),
            }
            true
        }
        Err(errs) => {
            assert!(!errs.errors().is_empty(), "rejected configuration without an error");
            let lines = text.lines().count().max(1);
            for e in errs.errors() {
                assert_eq!(e.file, CONFIG_FILE_NAME, "error names another file: {e}");
                assert!(!e.message.trim().is_empty(), "error without a message: {e:?}");
                assert_eq!(e.line == 0, e.column == 0, "half a position: {e:?}");
                assert!(e.line <= lines + 1, "line {} beyond the text ({lines} lines)", e.line);
                assert!(!e.to_string().is_empty());
            }
            false
        }
    };
    Some(accepted)
}

/// Whether the TOML text sets `system.include_dir` (in any spelling TOML allows).
fn sets_include_dir(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| {
        t.get("system")
            .and_then(toml::Value::as_table)
            .is_some_and(|s| s.contains_key("include_dir"))
    })
}

/// Feed `data` (as text, invalid UTF-8 replaced) to [`CtlRequest::parse_line`] and to
/// [`CtlResponse::parse_line`] for every request kind.
///
/// Invariants:
/// - an accepted request written with [`CtlRequest::to_line`] is one line that parses back to
///   the same request; a rejected one has a non-empty message;
/// - an accepted response written with [`CtlResponse::to_line`] is exactly one line (the
///   protocol is line-framed) that parses back, for the same request, to the same response;
///   a rejected one has a non-empty message.
///
/// Returns how many of the eight parses (the request, then a response to each request kind)
/// accepted the line.
pub fn check_ctl(data: &[u8]) -> usize {
    let line = String::from_utf8_lossy(data);
    let mut accepted = 0;
    match CtlRequest::parse_line(&line) {
        Ok(req) => {
            let out = req.to_line();
            let body = one_line(&out);
            assert_eq!(CtlRequest::parse_line(body), Ok(req), "request round trip");
            accepted += 1;
        }
        Err(msg) => assert!(!msg.is_empty(), "request rejected without a message"),
    }
    for req in CtlRequest::ALL {
        match CtlResponse::parse_line(req.clone(), &line) {
            Ok(resp) => {
                accepted += 1;
                let out = resp.to_line();
                let body = one_line(&out);
                match CtlResponse::parse_line(req.clone(), body) {
                    Ok(back) => assert_eq!(back, resp, "{} response round trip", req.name()),
                    Err(e) => panic!("re-serialised {} response rejected: {e}\n{out}", req.name()),
                }
            }
            Err(msg) => assert!(!msg.is_empty(), "response rejected without a message"),
        }
    }
    accepted
}

/// `out` without its final newline, after checking it has exactly that one newline.
fn one_line(out: &str) -> &str {
    let body = out.strip_suffix('\n').unwrap_or_else(|| panic!("line without newline: {out:?}"));
    assert!(!body.contains(['\n', '\r']), "protocol line spans several lines: {out:?}");
    body
}

/// Feed `data`, read as 16-bit little-endian samples (a trailing odd byte ignored), to a
/// [`DtmfDetector`] with the default thresholds.
///
/// Invariants:
/// - digits are keys of the DTMF pad; every `End` closes the `Start` before it, for the same
///   key, no earlier than it began, and starts and ends alternate;
/// - no event lies after the samples processed so far. Events of consecutive digits need not
///   be in time order: the times are estimates, and when one key follows another with little
///   or no pause (or mangled samples between them) the fuzzer found a start estimated up to
///   143 samples before the end of the digit before it;
/// - feeding the same samples in pieces of any even length gives the same events (a block
///   that straddles two calls is carried over), and so does feeding them again after
///   [`DtmfDetector::reset`].
///
/// Returns the number of events.
pub fn check_dtmf(data: &[u8]) -> usize {
    let samples: Vec<i16> =
        data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();

    let mut det = DtmfDetector::new(DtmfConfig::default());
    let mut whole = Vec::new();
    det.process(&samples, |e| whole.push(e));
    assert_eq!(det.samples_processed(), samples.len() as u64);
    check_dtmf_events(&whole, samples.len() as u64);
    let open = whole.last().and_then(|e| match e {
        DtmfEvent::Start { digit, .. } => Some(*digit),
        DtmfEvent::End { .. } => None,
    });
    assert_eq!(det.current_digit(), open, "current_digit disagrees with the events");

    // The piece length comes from the input so the fuzzer explores it: 2..=160 samples.
    let piece = 2 * (1 + usize::from(data.first().copied().unwrap_or(0)) % 80);
    det.reset();
    assert_eq!(det.samples_processed(), 0);
    let mut pieces = Vec::new();
    for chunk in samples.chunks(piece) {
        det.process(chunk, |e| pieces.push(e));
    }
    assert_eq!(pieces, whole, "events depend on how the samples were split ({piece} a piece)");
    whole.len()
}

fn check_dtmf_events(events: &[DtmfEvent], processed: u64) {
    const KEYS: &str = "0123456789*#ABCD";
    let mut open: Option<(char, u64)> = None;
    for e in events {
        assert!(KEYS.contains(e.digit()), "not a DTMF key: {e:?}");
        assert!(e.at_sample() <= processed, "event after the samples processed: {e:?}");
        match (*e, open) {
            (DtmfEvent::Start { digit, at_sample }, None) => open = Some((digit, at_sample)),
            (DtmfEvent::End { digit, at_sample }, Some((d, start))) => {
                assert_eq!(digit, d, "End for another key than the Start: {events:?}");
                assert!(at_sample >= start, "digit ends before it starts: {events:?}");
                open = None;
            }
            _ => panic!("starts and ends do not alternate: {events:?}"),
        }
    }
}
