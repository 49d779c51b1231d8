//! Just enough Ogg (RFC 3533) and Ogg Opus (RFC 7845) to hand packets to
//! opus-tools and take them back: one packet per page when writing.

/// The Ogg CRC-32 (polynomial 0x04c11db7, not reflected, no final xor).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The stream's channel count and pre-skip, and its audio packets.
pub struct OpusFile {
    pub channels: usize,
    pub pre_skip: usize,
    pub packets: Vec<Vec<u8>>,
}

/// Reads every packet of the first logical stream; the first two
/// (OpusHead, OpusTags) are parsed and left out.
pub fn read(data: &[u8]) -> OpusFile {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut pos = 0;
    while pos + 27 <= data.len() {
        assert_eq!(&data[pos..pos + 4], b"OggS", "Ogg capture pattern at {pos}");
        let nsegs = data[pos + 26] as usize;
        let lacing = &data[pos + 27..pos + 27 + nsegs];
        let mut body = pos + 27 + nsegs;
        for &l in lacing {
            current.extend_from_slice(&data[body..body + l as usize]);
            body += l as usize;
            if l < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        pos = body;
    }
    let head = packets.remove(0);
    assert_eq!(&head[..8], b"OpusHead");
    let tags = packets.remove(0);
    assert_eq!(&tags[..8], b"OpusTags");
    OpusFile {
        channels: head[9] as usize,
        pre_skip: u16::from_le_bytes([head[10], head[11]]) as usize,
        packets,
    }
}

fn page(out: &mut Vec<u8>, header_type: u8, granule: u64, seq: u32, packet: &[u8]) {
    let start = out.len();
    out.extend_from_slice(b"OggS");
    out.push(0);
    out.push(header_type);
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&0x636f_6e66u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let mut lacing = vec![255u8; packet.len() / 255];
    lacing.push((packet.len() % 255) as u8);
    out.push(lacing.len() as u8);
    out.extend_from_slice(&lacing);
    out.extend_from_slice(packet);
    let crc = crc32(&out[start..]);
    out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
}

/// An Ogg Opus file of mono packets at 48 kHz, each `samples` long.
pub fn write(packets: &[(Vec<u8>, usize)], pre_skip: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(1);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    page(&mut out, 2, 0, 0, &head);
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&6u32.to_le_bytes());
    tags.extend_from_slice(b"confab");
    tags.extend_from_slice(&0u32.to_le_bytes());
    page(&mut out, 0, 0, 1, &tags);
    let mut granule = 0u64;
    for (i, (p, samples)) in packets.iter().enumerate() {
        granule += *samples as u64;
        let last = i + 1 == packets.len();
        page(&mut out, if last { 4 } else { 0 }, granule, i as u32 + 2, p);
    }
    out
}
