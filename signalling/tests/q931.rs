//! Q.931 codec fixtures: byte vectors built by hand from the Q.931 §4.5 codings, every §5.8
//! error class, and a replay of the fuzz corpus.

use cardpbx_signalling::q931::ie::{npi, ton};
use cardpbx_signalling::q931::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

fn decode(s: &str) -> Decoded {
    Message::decode(&hex(s)).expect("fixture must parse")
}

const SETUP: &str =
    "08 02 00 01 05 04 03 80 90 A3 18 03 A9 83 81 6C 06 21 80 31 32 33 34 70 05 A1 35 36 37 38";

#[test]
fn setup_deconstruct() {
    let d = decode(SETUP);
    assert!(d.problems.is_empty());
    let m = &d.message;
    assert_eq!(m.call_ref, CallRef::new(1, false));
    assert_eq!(m.msg_type, MessageType::Setup);
    let bc = m.bearer_capability().unwrap();
    assert_eq!(bc, &BearerCapability::speech_alaw());
    assert!(bc.is_voice());
    assert_eq!(bc.layer1.as_ref().unwrap().protocol, LayerInfo::ALAW);
    let ch = m.channel_id().unwrap();
    assert!(ch.exclusive && !ch.d_channel && ch.interface_id.is_none());
    assert_eq!(ch.channel(), Some(1));
    let calling = m.calling_number().unwrap();
    assert_eq!((calling.ton, calling.npi), (ton::NATIONAL, npi::E164));
    assert_eq!(calling.presentation, Some(Presentation::ALLOWED_NOT_SCREENED));
    assert_eq!(calling.digits, "1234");
    let called = m.called_number().unwrap();
    assert_eq!((called.ton, called.npi, called.digits.as_str()), (2, 1, "5678"));
    assert!(!m.sending_complete());
    assert_eq!(reaction(&d, Direction::NetworkToUser), Reaction::Proceed);
    assert_eq!(reaction(&d, Direction::UserToNetwork), Reaction::Proceed);
}

#[test]
fn setup_construct_and_emit() {
    let mut calling = PartyNumber::new(ton::NATIONAL, npi::E164, "1234");
    calling.presentation = Some(Presentation::ALLOWED_NOT_SCREENED);
    let m = Message::setup(
        CallRef::new(1, false),
        BearerCapability::speech_alaw(),
        Some(ChannelId::exclusive(1)),
        Some(calling),
        CalledNumber::new(ton::NATIONAL, npi::E164, "5678"),
    );
    assert_eq!(m.to_bytes(), hex(SETUP));
    assert_eq!(Message::parse(&hex(SETUP)).unwrap(), m);
}

#[test]
fn other_message_fixtures_round_trip() {
    let cases: &[(&str, MessageType)] = &[
        ("08 02 80 01 02 18 03 A9 83 81", MessageType::CallProceeding),
        ("08 02 80 01 01 1E 02 82 88", MessageType::Alerting),
        ("08 02 80 01 07 4C 05 81 35 36 37 38", MessageType::Connect),
        ("08 02 00 01 0F", MessageType::ConnectAck),
        ("08 02 80 01 45 08 02 80 90", MessageType::Disconnect),
        ("08 02 00 01 4D 08 02 80 90", MessageType::Release),
        ("08 02 80 01 5A 08 02 80 90", MessageType::ReleaseComplete),
        ("08 02 00 00 46 79 01 87", MessageType::Restart),
        ("08 02 80 00 4E 18 03 A9 83 81 79 01 80", MessageType::RestartAck),
        ("08 02 80 01 7D 08 02 80 9E 14 01 0A", MessageType::Status),
        ("08 02 00 01 75", MessageType::StatusEnquiry),
        ("08 02 00 01 7B A1 70 02 80 39", MessageType::Information),
        ("08 02 80 01 0D 18 03 A9 83 85", MessageType::SetupAck),
        ("08 02 80 01 6E 27 01 F1", MessageType::Notify),
        ("08 02 80 01 62 1C 03 91 A1 00", MessageType::Facility),
        ("08 02 80 01 20 7E 03 04 68 69", MessageType::UserInformation),
        ("08 02 80 01 03 1E 02 84 81", MessageType::Progress),
    ];
    for (s, t) in cases {
        let d = decode(s);
        assert!(d.problems.is_empty(), "{s}: {:?}", d.problems);
        assert_eq!(d.message.msg_type, *t, "{s}");
        assert_eq!(d.message.to_bytes(), hex(s), "{s} must re-emit identically");
        for dir in [Direction::NetworkToUser, Direction::UserToNetwork] {
            assert_eq!(reaction(&d, dir), Reaction::Proceed, "{s} {dir:?}");
        }
    }
}

#[test]
fn typed_accessors() {
    let d = decode("08 02 80 01 45 08 04 02 81 91 12 1E 02 82 88");
    let c = d.message.cause().unwrap();
    assert_eq!(c.location, Location::PUBLIC_LOCAL);
    assert_eq!(c.recommendation, Some(1));
    assert_eq!(c.cause, Cause::USER_BUSY);
    assert_eq!(c.diagnostics, vec![0x12]);
    assert_eq!(d.message.to_bytes(), hex("08 02 80 01 45 08 04 02 81 91 12 1E 02 82 88"));
    assert!(d.message.inband_available());
    let st = decode("08 02 80 01 7D 08 02 80 9E 14 01 0A").message;
    assert_eq!(st.call_state(), Some(10));
    assert_eq!(st.cause().unwrap().cause, Cause::RESPONSE_TO_STATUS_ENQUIRY);
    let r = decode("08 02 00 00 46 79 01 87").message;
    assert_eq!(r.restart_class(), Some(RestartClass::AllInterfaces));
    assert!(r.call_ref.is_global());
    let n = decode("08 02 80 01 6E 27 01 F1").message;
    assert_eq!(n.notification(), Some(0x71));
    let disp = decode("08 02 80 01 01 28 05 41 6C 69 63 65").message;
    assert_eq!(disp.display(), Some("Alice"));
    let redir = decode("08 02 80 01 05 04 03 80 90 A3 18 03 A9 83 81 74 05 21 03 81 34 35").message;
    let rn = redir.redirecting_number().unwrap();
    assert_eq!((rn.reason, rn.digits.as_str()), (Some(1), "45"));
    assert_eq!(rn.presentation.unwrap().screening, 3);
}

#[test]
fn builders_encode_known_bytes() {
    let disc = Message::clearing(
        CallRef::new(1, true),
        MessageType::Disconnect,
        CauseIe::new(Location::USER, Cause::NORMAL_CLEARING),
    );
    assert_eq!(disc.to_bytes(), hex("08 02 80 01 45 08 02 80 90"));
    let st = Message::status(
        CallRef::new(0x1234, true),
        CauseIe::new(Location::USER, Cause::MESSAGE_TYPE_NONEXISTENT).with_diagnostics(vec![0x11]),
        7,
    );
    assert_eq!(st.to_bytes(), hex("08 02 92 34 7D 08 03 80 E1 11 14 01 07"));
    let rs = Message::restart(RestartClass::Indicated, Some(ChannelId::exclusive(17)), false);
    assert_eq!(rs.to_bytes(), hex("08 02 00 00 46 18 03 A9 83 91 79 01 80"));
    let cp = Message::with_channel(
        CallRef::new(5, true),
        MessageType::CallProceeding,
        ChannelId::preferred(2),
    );
    assert_eq!(cp.to_bytes(), hex("08 02 80 05 02 18 03 A1 83 82"));
    assert_eq!(
        Ie::BearerCapability(BearerCapability::unrestricted_digital()).emit_vec(),
        hex("04 02 88 90")
    );
}

trait EmitVec {
    fn emit_vec(&self) -> Vec<u8>;
}
impl EmitVec for Ie {
    fn emit_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.emit(&mut v);
        v
    }
}

#[test]
fn call_reference_forms() {
    let one = decode("08 01 85 05 04 03 80 90 A3");
    assert_eq!(one.message.call_ref, CallRef { len: 1, value: 5, flag: true });
    assert_eq!(one.message.to_bytes(), hex("08 01 85 05 04 03 80 90 A3"));
    let dummy = decode("08 00 62 1C 01 91");
    assert_eq!(dummy.message.call_ref, CallRef::DUMMY);
    assert_eq!(dummy.message.to_bytes(), hex("08 00 62 1C 01 91"));
    assert_eq!(CallRef::new(0x7FFF, false).reply(), CallRef::new(0x7FFF, true));
    let big = decode("08 02 FF FF 07");
    assert_eq!(big.message.call_ref, CallRef::new(0x7FFF, true));
}

#[test]
fn ignored_messages() {
    assert_eq!(Message::parse(&[]), Err(Q931Error::TooShort(0)));
    assert_eq!(Message::parse(&hex("08 02 00")), Err(Q931Error::TooShort(3)));
    assert_eq!(Message::parse(&hex("08 02 00 01")), Err(Q931Error::TooShort(4)));
    assert_eq!(Message::parse(&hex("09 02 00 01 05")), Err(Q931Error::ProtocolDiscriminator(9)));
    assert_eq!(Message::parse(&hex("08 03 00 00 01 05")), Err(Q931Error::CallRefLength(3)));
    assert_eq!(Message::parse(&hex("08 12 00 01 05")), Err(Q931Error::CallRefLength(0x12)));
}

fn reject_cause(r: Reaction) -> (u8, Vec<u8>) {
    match r {
        Reaction::Reject(c) => (c.cause.0, c.diagnostics),
        other => panic!("expected Reject, got {other:?}"),
    }
}

fn report_cause(r: Reaction) -> (u8, Vec<u8>) {
    match r {
        Reaction::ProceedAndReport(c) => (c.cause.0, c.diagnostics),
        other => panic!("expected ProceedAndReport, got {other:?}"),
    }
}

#[test]
fn unknown_message_type_is_97() {
    let d = decode("08 02 00 01 11 08 02 80 90");
    assert_eq!(d.message.msg_type, MessageType::Unknown(0x11));
    assert_eq!(d.message.to_bytes(), hex("08 02 00 01 11 08 02 80 90"));
    let p = check(&d, Direction::NetworkToUser);
    assert_eq!(p[0].kind, ProblemKind::UnknownMessageType);
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (97, vec![0x11]));
}

#[test]
fn mandatory_missing_is_96() {
    // SETUP without bearer capability.
    let d = decode("08 02 00 01 05 18 03 A9 83 81 70 02 80 31");
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (96, vec![0x04]));
    // SETUP network->user without channel id: 96; user->network it is optional.
    let d = decode("08 02 00 01 05 04 03 80 90 A3 70 02 80 31");
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (96, vec![0x18]));
    assert_eq!(reaction(&d, Direction::UserToNetwork), Reaction::Proceed);
    // STATUS without call state.
    let d = decode("08 02 80 01 7D 08 02 80 9E");
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (96, vec![0x14]));
    // RESTART without restart indicator; class "indicated" without channel id.
    let d = decode("08 02 00 00 46");
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (96, vec![0x79]));
    let d = decode("08 02 00 00 46 79 01 80");
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (96, vec![0x18]));
    // DISCONNECT without cause: act (as cause 31), answer RELEASE with 96.
    let d = decode("08 02 80 01 45");
    assert_eq!(report_cause(reaction(&d, Direction::NetworkToUser)), (96, vec![0x08]));
    // RELEASE COMPLETE is never answered.
    let d = decode("08 02 80 01 5A 01 01 00");
    assert_eq!(reaction(&d, Direction::NetworkToUser), Reaction::Proceed);
}

#[test]
fn comprehension_required_unknown_ie_is_96() {
    let d = decode("08 02 00 01 05 01 01 00 04 03 80 90 A3 18 03 A9 83 81");
    let p = check(&d, Direction::NetworkToUser);
    assert_eq!(p[0].kind, ProblemKind::ComprehensionRequired);
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (96, vec![0x01]));
}

#[test]
fn unrecognised_ie_is_99_and_message_proceeds() {
    let s = "08 02 00 01 05 04 03 80 90 A3 18 03 A9 83 81 5F 02 01 02 C3";
    let d = decode(s);
    assert_eq!(d.message.ies.iter().filter(|ie| matches!(ie, Ie::Raw { id: 0x5F, .. })).count(), 1);
    assert!(d.message.ies.contains(&Ie::RawSingle { codeset: 0, octet: 0xC3 }));
    assert_eq!(report_cause(reaction(&d, Direction::NetworkToUser)), (99, vec![0xC3, 0x5F]));
    // A DISCONNECT with one: proceed, cause 99 goes into the RELEASE.
    let d = decode("08 02 80 01 45 08 02 80 90 5F 00");
    assert_eq!(report_cause(reaction(&d, Direction::NetworkToUser)), (99, vec![0x5F]));
    // Known but untyped elements (HLC, LLC, subaddress) are not "unrecognised".
    let d = decode("08 02 00 01 05 04 03 80 90 A3 18 03 A9 83 81 71 02 80 50 7D 02 91 81");
    assert!(check(&d, Direction::NetworkToUser).is_empty());
}

#[test]
fn invalid_contents_is_100() {
    // Mandatory bearer capability with one octet: reject with 100.
    let d = decode("08 02 00 01 05 04 01 80 18 03 A9 83 81");
    assert!(matches!(
        d.problems[0],
        IeProblem::InvalidContent { id: 4, error: IeError::Length, .. }
    ));
    assert_eq!(d.message.ies[0], Ie::Raw { codeset: 0, id: 4, bytes: vec![0x80] });
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (100, vec![0x04]));
    // Optional calling number with a bad digit: ignored, reported with 100.
    let d = decode("08 02 00 01 05 04 03 80 90 A3 18 03 A9 83 81 6C 03 81 31 2B");
    assert!(matches!(
        d.problems[0],
        IeProblem::InvalidContent { id: 0x6C, error: IeError::InvalidDigit(b'+'), .. }
    ));
    assert!(d.message.calling_number().is_none());
    assert_eq!(report_cause(reaction(&d, Direction::NetworkToUser)), (100, vec![0x6C]));
    assert_eq!(
        d.message.to_bytes(),
        hex("08 02 00 01 05 04 03 80 90 A3 18 03 A9 83 81 6C 03 81 31 2B")
    );
    // Truncated mandatory cause at the end of a STATUS.
    let d = decode("08 02 80 01 7D 14 01 0A 08 05 80 9E");
    assert_eq!(d.problems, vec![IeProblem::Truncated { codeset: 0, id: 8 }]);
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (100, vec![0x08]));
}

#[test]
fn status_minor_faults_are_not_answered() {
    let d = decode("08 02 80 01 7D 08 02 80 9E 14 01 0A 5F 00");
    assert_eq!(check(&d, Direction::NetworkToUser)[0].kind, ProblemKind::Unrecognised);
    assert_eq!(reaction(&d, Direction::NetworkToUser), Reaction::Proceed);
}

#[test]
fn long_contents_are_clamped_to_255() {
    let m = Message::new(CallRef::new(1, true), MessageType::Alerting)
        .with(Ie::Display("x".repeat(300)))
        .with(Ie::Raw { codeset: 6, id: 1, bytes: vec![7; 400] });
    let back = Message::parse(&m.to_bytes()).unwrap();
    assert_eq!(back.display().map(str::len), Some(255));
    assert!(matches!(&back.ies[1], Ie::Raw { codeset: 6, bytes, .. } if bytes.len() == 255));
}

#[test]
fn global_call_reference_misuse_is_81() {
    let d = decode("08 02 00 00 05 04 03 80 90 A3 18 03 A9 83 81");
    assert_eq!(reject_cause(reaction(&d, Direction::NetworkToUser)), (81, vec![]));
}

#[test]
fn ie_errors() {
    use ie::*;
    assert_eq!(parse_digits(b"12*#0"), Ok("12*#0".into()));
    assert_eq!(parse_digits(b"12A"), Err(IeError::InvalidDigit(b'A')));
    assert_eq!(CalledNumber::parse(&hex("01 31")), Err(IeError::Extension("3")));
    assert_eq!(
        ChannelId::parse(&hex("89")),
        Err(IeError::Unsupported("basic-rate interface type"))
    );
    assert_eq!(ChannelId::parse(&hex("A9 93 FF")), Err(IeError::Unsupported("channel slot map")));
    assert_eq!(ChannelId::parse(&hex("A9 83")), Err(IeError::Length));
    assert!(matches!(ChannelId::parse(&hex("AA")), Err(IeError::Reserved { .. })));
    assert!(matches!(RestartClass::parse(&hex("83")), Err(IeError::Reserved { value: 3, .. })));
    assert_eq!(Ie::parse_variable(0x28, &[0x41, 0xC1]), Err(IeError::NotIa5(0xC1)));
    assert_eq!(Ie::parse_variable(0x7E, &[]), Err(IeError::Length));
    assert_eq!(BearerCapability::parse(&hex("00 90")), Err(IeError::Extension("3")));
    assert!(matches!(BearerCapability::parse(&hex("80 90 C2 A3")), Err(IeError::Reserved { .. })));
    // Interface identifier handled (NFAS), multi-octet rejected.
    let c = ChannelId::parse(&hex("E9 81 83 85")).unwrap();
    assert_eq!((c.interface_id, c.channel()), (Some(1), Some(5)));
    assert_eq!(
        ChannelId::parse(&hex("E9 01 81 83 85")),
        Err(IeError::Unsupported("multi-octet interface identifier"))
    );
    // Several channels, D-channel indicator.
    let c = ChannelId::parse(&hex("A9 83 01 02 83")).unwrap();
    assert_eq!(c.selection, ChannelSelection::Channels(vec![1, 2, 3]));
    assert!(ChannelId::parse(&hex("AC")).unwrap().d_channel);
}

#[test]
fn bearer_capability_variants() {
    let mu = BearerCapability::parse(&hex("90 90 A2")).unwrap();
    assert_eq!(
        (mu.transfer_capability, mu.layer1.unwrap().protocol),
        (BearerCapability::ITC_AUDIO_3K1, LayerInfo::ULAW)
    );
    let v110 = BearerCapability::parse(&hex("88 90 21 0F 8F")).unwrap();
    assert_eq!(v110.layer1, Some(LayerInfo { protocol: 1, extra: vec![0x0F, 0x8F] }));
    let mr = BearerCapability::parse(&hex("88 98 82")).unwrap();
    assert_eq!(mr.rate_multiplier, Some(2));
    let l23 = BearerCapability::parse(&hex("88 90 A3 C2 E6")).unwrap();
    assert_eq!((l23.layer2.unwrap().protocol, l23.layer3.unwrap().protocol), (2, 6));
    for s in ["90 90 A2", "88 90 21 0F 8F", "88 98 82", "88 90 A3 C2 E6"] {
        let mut out = Vec::new();
        BearerCapability::parse(&hex(s)).unwrap().emit(&mut out);
        assert_eq!(out, hex(s));
    }
}

#[test]
fn shifts_and_codesets() {
    // Locking shift to 6 with two elements, then nothing else.
    let s = "08 02 80 01 01 1E 02 82 88 96 01 01 41 28 01 42";
    let d = decode(s);
    assert!(d.problems.is_empty());
    assert_eq!(d.message.ies[1], Ie::Raw { codeset: 6, id: 1, bytes: vec![0x41] });
    assert_eq!(d.message.ies[2], Ie::Raw { codeset: 6, id: 0x28, bytes: vec![0x42] });
    assert!(d.message.display().is_none(), "codeset 6 0x28 is not Display");
    assert_eq!(d.message.to_bytes(), hex(s));
    // Non-locking shift to 5 applies to one element only; codeset 0 resumes.
    let s = "08 02 80 01 01 9D 20 01 07 1E 02 82 88";
    let d = decode(s);
    assert_eq!(d.message.ies[0], Ie::Progress(ProgressIndicator::new(Location::PUBLIC_LOCAL, 8)));
    assert_eq!(d.message.ies[1], Ie::Raw { codeset: 5, id: 0x20, bytes: vec![7] });
    assert_eq!(d.message.to_bytes(), hex("08 02 80 01 01 1E 02 82 88 9D 20 01 07"));
    assert!(check(&d, Direction::NetworkToUser).is_empty(), "other codesets are not reported");
    // Locking shift to a lower codeset / to 0 is reported but tolerated.
    let d = decode("08 02 80 01 01 97 20 00 95 20 00 90 28 01 41");
    assert!(d.problems.contains(&IeProblem::BadShift { octet: 0x95 }));
    assert!(d.problems.contains(&IeProblem::BadShift { octet: 0x90 }));
    assert_eq!(d.message.ies.iter().map(Ie::codeset).collect::<Vec<_>>(), vec![5, 5, 7]);
    // Sending complete anywhere; single octets in codeset 6.
    let d = decode("08 02 00 01 05 04 03 80 90 A3 18 03 A9 83 81 70 02 80 31 A1 9E A1");
    assert!(d.message.sending_complete());
    assert!(d.message.ies.contains(&Ie::RawSingle { codeset: 6, octet: 0xA1 }));
    assert_eq!(
        d.message.to_bytes(),
        hex("08 02 00 01 05 A1 04 03 80 90 A3 18 03 A9 83 81 70 02 80 31 9E A1")
    );
}

#[test]
fn out_of_order_accepted_and_emitted_ascending() {
    let d = decode("08 02 00 01 05 70 02 80 31 18 03 A9 83 81 04 03 80 90 A3");
    assert!(d.problems.contains(&IeProblem::OutOfSequence { codeset: 0, id: 0x18 }));
    assert_eq!(reaction(&d, Direction::NetworkToUser), Reaction::Proceed);
    assert_eq!(
        d.message.to_bytes(),
        hex("08 02 00 01 05 04 03 80 90 A3 18 03 A9 83 81 70 02 80 31")
    );
    // A repeat indicator stays in front of the repeated bearer capabilities.
    let d = decode("08 02 00 01 05 18 03 A9 83 81 D2 04 03 80 90 A3 04 02 88 90");
    assert_eq!(
        d.message.to_bytes(),
        hex("08 02 00 01 05 D2 04 03 80 90 A3 04 02 88 90 18 03 A9 83 81")
    );
    assert_eq!(d.message.bearer_capability(), Some(&BearerCapability::speech_alaw()));
}

#[test]
fn cause_table() {
    for c in [
        16, 17, 18, 19, 21, 31, 34, 41, 1, 3, 27, 28, 38, 42, 44, 47, 58, 81, 96, 100, 101, 102,
        111, 127,
    ] {
        assert!(Cause(c).description().is_some(), "cause {c}");
    }
    assert!(Cause::ALL.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(Cause::NORMAL_CLEARING.to_string(), "cause 16 (normal call clearing)");
    assert_eq!(Cause(120).to_string(), "cause 120");
    assert_eq!(MessageType::from_u8(0x5A).name(), "RELEASE COMPLETE");
    assert_eq!(MessageType::Unknown(0x11).to_string(), "UNKNOWN(0x11)");
}

#[test]
fn fuzz_corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/q931");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("fuzz/corpus/q931 exists") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        fuzz_check(&data);
        n += 1;
    }
    assert!(n >= 10, "corpus has {n} seeds");
}
