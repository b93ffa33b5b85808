//! Version 3's small integers: unsigned LEB128 varints (7 bits a byte, low bits first, at most
//! 10 bytes) and zigzag for signed deltas, so that small negative numbers stay short.

/// The longest varint: ten bytes hold 64 bits.
pub(crate) const MAX_LEN: usize = 10;

/// Appends `value` as a varint.
#[inline]
pub(crate) fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The bytes `value` takes as a varint.
#[inline]
pub(crate) fn len(value: u64) -> usize {
    // 1 byte per started 7 bits; 0 takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Signed to unsigned, small magnitudes to small numbers.
#[inline]
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Why bytes are not a varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintProblem {
    /// The bytes end inside it.
    Cut,
    /// Longer than 10 bytes, or more than 64 bits.
    TooLong,
}

/// Reads a varint at `bytes[*at..]`, moving `at` past it.
#[inline]
pub(crate) fn get(bytes: &[u8], at: &mut usize) -> Result<u64, VarintProblem> {
    let mut value = 0u64;
    for index in 0..MAX_LEN {
        let &byte = bytes.get(*at + index).ok_or(VarintProblem::Cut)?;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may carry one bit only.
        if index == MAX_LEN - 1 && bits > 1 {
            return Err(VarintProblem::TooLong);
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            *at += index + 1;
            return Ok(value);
        }
    }
    Err(VarintProblem::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length_and_say_how_long_they_are() {
        let values = [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, (1 << 56) - 1, 1 << 63, u64::MAX];
        for value in values {
            let mut bytes = Vec::new();
            put(&mut bytes, value);
            assert_eq!(bytes.len(), len(value), "{value}");
            let mut at = 0;
            assert_eq!(get(&bytes, &mut at), Ok(value));
            assert_eq!(at, bytes.len());
        }
        assert_eq!(len(0), 1);
        assert_eq!(len(u64::MAX), 10);
    }

    #[test]
    fn a_cut_or_overlong_varint_is_refused() {
        let mut at = 0;
        assert_eq!(get(&[0x80, 0x80], &mut at), Err(VarintProblem::Cut));
        assert_eq!(get(&[0xff; 11], &mut at), Err(VarintProblem::TooLong));
        let mut eleven = vec![0xff; 9];
        eleven.push(0x02);
        assert_eq!(get(&eleven, &mut at), Err(VarintProblem::TooLong), "65 bits");
        assert_eq!(at, 0, "nothing taken on error");
    }

    #[test]
    fn zigzag_keeps_small_magnitudes_small_and_round_trips_the_extremes() {
        assert_eq!((zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)), (0, 1, 2, 3));
        for value in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
    }
}
