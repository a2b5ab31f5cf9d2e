//! HDLC frames for D-channels.

/// Largest D-channel frame the HAL carries, in bytes: LAPD's N201 = 260 octets of information
/// plus two address octets and two control octets (Q.921 §5.9.3).
pub const MAX_HDLC_FRAME: usize = 264;

/// One HDLC frame as it travels through the HAL: address, control and information, without
/// flags, bit stuffing or FCS (the card or the simulator handles those).
///
/// Fixed-size so that it can travel through preallocated rings without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HdlcFrame {
    len: u16,
    data: [u8; MAX_HDLC_FRAME],
}

impl HdlcFrame {
    /// A frame holding `bytes`, or `None` when they exceed [`MAX_HDLC_FRAME`].
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_HDLC_FRAME {
            return None;
        }
        let mut data = [0u8; MAX_HDLC_FRAME];
        data[..bytes.len()].copy_from_slice(bytes);
        Some(HdlcFrame { len: bytes.len() as u16, data })
    }

    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

impl std::fmt::Debug for HdlcFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HdlcFrame(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_keeps_its_bytes_and_refuses_oversize() {
        let f = HdlcFrame::new(&[0x00, 0x01, 0x7f]).unwrap();
        assert_eq!(f.as_bytes(), &[0x00, 0x01, 0x7f]);
        assert!(HdlcFrame::new(&[0u8; MAX_HDLC_FRAME]).is_some());
        assert!(HdlcFrame::new(&[0u8; MAX_HDLC_FRAME + 1]).is_none());
        assert_eq!(format!("{f:?}"), "HdlcFrame(00017f)");
    }
}
