//! Q.931 property tests: emit∘parse round trip of arbitrary typed messages; arbitrary bytes
//! never panic and anything accepted re-emits and re-parses to the same message.

use cardpbx_signalling::q931::ie::id;
use cardpbx_signalling::q931::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// Extension octets: bit 8 clear on all but the last.
fn ext_octets(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(0u8..0x80, 0..=max).prop_map(|mut v| {
        if let Some(last) = v.last_mut() {
            *last |= 0x80;
        }
        v
    })
}

fn layer() -> impl Strategy<Value = Option<LayerInfo>> {
    proptest::option::of(
        (0u8..32, ext_octets(3)).prop_map(|(protocol, extra)| LayerInfo { protocol, extra }),
    )
}

fn bearer() -> impl Strategy<Value = BearerCapability> {
    (0u8..4, 0u8..32, 0u8..4, 0u8..32, 0u8..128, layer(), layer(), layer()).prop_map(
        |(cs, itc, mode, rate, mult, l1, l2, l3)| BearerCapability {
            coding_standard: cs,
            transfer_capability: itc,
            transfer_mode: mode,
            transfer_rate: rate,
            rate_multiplier: (rate == BearerCapability::RATE_MULTIRATE).then_some(mult),
            layer1: l1,
            layer2: l2,
            layer3: l3,
        },
    )
}

fn cause_ie() -> impl Strategy<Value = CauseIe> {
    (0u8..4, 0u8..16, proptest::option::of(0u8..128), 0u8..128, vec(any::<u8>(), 0..8)).prop_map(
        |(cs, loc, rec, c, diag)| CauseIe {
            coding_standard: cs,
            location: Location(loc),
            recommendation: rec,
            cause: Cause(c),
            diagnostics: diag,
        },
    )
}

fn channel_id() -> impl Strategy<Value = ChannelId> {
    let sel = prop_oneof![
        Just(ChannelSelection::NoChannel),
        Just(ChannelSelection::Any),
        vec(0u8..128, 1..4).prop_map(ChannelSelection::Channels),
    ];
    (any::<bool>(), any::<bool>(), proptest::option::of(0u8..128), sel).prop_map(|(e, d, i, s)| {
        ChannelId { exclusive: e, d_channel: d, interface_id: i, selection: s }
    })
}

fn presentation() -> impl Strategy<Value = Presentation> {
    (0u8..4, 0u8..4).prop_map(|(p, s)| Presentation { presentation: p, screening: s })
}

const DIGITS: &str = "[0-9*#]{0,16}";

fn party() -> impl Strategy<Value = PartyNumber> {
    (0u8..8, 0u8..16, proptest::option::of(presentation()), DIGITS)
        .prop_map(|(ton, npi, presentation, digits)| PartyNumber { ton, npi, presentation, digits })
}

fn redirecting() -> impl Strategy<Value = RedirectingNumber> {
    let pr = prop_oneof![
        Just((None, None)),
        (presentation(), proptest::option::of(0u8..16)).prop_map(|(p, r)| (Some(p), r)),
    ];
    (0u8..8, 0u8..16, pr, DIGITS).prop_map(|(ton, npi, (presentation, reason), digits)| {
        RedirectingNumber { ton, npi, presentation, reason, digits }
    })
}

/// Codeset-0 ids kept raw (known but untyped, or unknown non-comprehension-required).
const RAW0: &[u8] =
    &[0x10, 0x20, 0x29, 0x2C, 0x34, 0x4D, 0x5F, 0x6D, 0x71, 0x76, 0x78, 0x7C, 0x7D, 0x01, 0x0D];

fn single_octet(codeset: u8) -> impl Strategy<Value = u8> {
    (0x80u8..=0xFF).prop_filter("not shift / typed", move |o| {
        o & 0xF0 != 0x90 && (codeset != 0 || (*o != 0xA1 && o & 0xF0 != 0xB0 && o & 0xF0 != 0xD0))
    })
}

fn any_ie() -> impl Strategy<Value = Ie> {
    prop_oneof![
        Just(Ie::SendingComplete),
        (0u8..16).prop_map(Ie::CongestionLevel),
        (0u8..16).prop_map(Ie::RepeatIndicator),
        bearer().prop_map(Ie::BearerCapability),
        cause_ie().prop_map(Ie::Cause),
        (0u8..64).prop_map(Ie::CallState),
        channel_id().prop_map(Ie::ChannelId),
        vec(any::<u8>(), 0..12).prop_map(Ie::Facility),
        (0u8..4, 0u8..16, 0u8..128).prop_map(|(cs, l, d)| Ie::Progress(ProgressIndicator {
            coding_standard: cs,
            location: Location(l),
            description: d
        })),
        (0u8..128).prop_map(Ie::Notification),
        "[\\x00-\\x7f]{0,20}".prop_map(Ie::Display),
        party().prop_map(Ie::ConnectedNumber),
        party().prop_map(Ie::CallingNumber),
        (0u8..8, 0u8..16, DIGITS).prop_map(|(t, n, d)| Ie::CalledNumber(CalledNumber {
            ton: t,
            npi: n,
            digits: d
        })),
        redirecting().prop_map(Ie::RedirectingNumber),
        prop_oneof![
            Just(RestartClass::Indicated),
            Just(RestartClass::SingleInterface),
            Just(RestartClass::AllInterfaces)
        ]
        .prop_map(Ie::RestartIndicator),
        vec(any::<u8>(), 1..12).prop_map(Ie::UserUser),
        (proptest::sample::select(RAW0), vec(any::<u8>(), 0..8)).prop_map(|(id, bytes)| Ie::Raw {
            codeset: 0,
            id,
            bytes
        }),
        (4u8..8, 0u8..128, vec(any::<u8>(), 0..8)).prop_map(|(codeset, id, bytes)| Ie::Raw {
            codeset,
            id,
            bytes
        }),
        single_octet(0).prop_map(|octet| Ie::RawSingle { codeset: 0, octet }),
        (5u8..8).prop_flat_map(
            |cs| single_octet(cs).prop_map(move |octet| Ie::RawSingle { codeset: cs, octet })
        ),
    ]
}

fn call_ref() -> impl Strategy<Value = CallRef> {
    prop_oneof![
        (0u16..0x8000, any::<bool>()).prop_map(|(v, f)| CallRef::new(v, f)),
        (0u16..0x80, any::<bool>()).prop_map(|(value, flag)| CallRef { len: 1, value, flag }),
        Just(CallRef::DUMMY),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (call_ref(), any::<u8>(), vec(any_ie(), 0..10)).prop_map(|(call_ref, t, ies)| Message {
        call_ref,
        msg_type: MessageType::from_u8(t),
        ies,
    })
}

/// A valid header followed by element soup, to reach the element parser more often.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    (any::<u16>(), any::<u8>(), vec(any::<u8>(), 0..64)).prop_map(|(cr, t, body)| {
        let mut v = vec![0x08, 0x02, (cr >> 8) as u8, cr as u8, t];
        v.extend(body);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn emit_parse_round_trip(m in message()) {
        let bytes = m.to_bytes();
        let d = Message::decode(&bytes).unwrap();
        prop_assert!(d.problems.is_empty(), "{:?}", d.problems);
        let mut expected = m.clone();
        expected.normalize();
        prop_assert_eq!(&d.message, &expected);
        prop_assert_eq!(expected.to_bytes(), bytes);
        // check never flags what the typed builder produced as invalid content.
        for p in check(&d, Direction::NetworkToUser) {
            prop_assert!(p.kind != ProblemKind::MandatoryInvalid && p.kind != ProblemKind::OptionalInvalid);
        }
    }

    #[test]
    fn typed_ie_round_trip(ie in any_ie()) {
        let mut m = Message::new(CallRef::new(1, false), MessageType::Information);
        m.ies.push(ie.clone());
        let back = Message::parse(&m.to_bytes()).unwrap();
        prop_assert_eq!(back.ies, vec![ie]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..80)) {
        fuzz_check(&data);
    }

    #[test]
    fn element_soup_round_trips(data in soup()) {
        fuzz_check(&data);
        let d = Message::decode(&data).unwrap();
        let again = Message::decode(&d.message.to_bytes()).unwrap();
        prop_assert_eq!(d.message, again.message);
    }

    #[test]
    fn normalize_is_idempotent(m in message()) {
        let mut a = m.clone();
        a.normalize();
        let mut b = a.clone();
        b.normalize();
        prop_assert_eq!(a, b);
    }
}

#[test]
fn mandatory_table_ids_are_typed() {
    // Every mandatory id has a typed decoder, so "present" is always decidable.
    let types = (0u8..=0x7F).map(MessageType::from_u8);
    for t in types {
        for dir in [Direction::NetworkToUser, Direction::UserToNetwork] {
            for &m in mandatory_ies(t, dir) {
                assert!(ie::is_known_variable(m));
                assert!(
                    !matches!(Ie::parse_variable(m, &[0x80, 0x90, 0xA3]), Ok(Ie::Raw { .. })),
                    "{m:#x}"
                );
            }
        }
    }
    assert_eq!(mandatory_ies(MessageType::Disconnect, Direction::NetworkToUser), &[id::CAUSE]);
}
