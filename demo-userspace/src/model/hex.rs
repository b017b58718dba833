//! Addresses as `0x…` hex strings, written by hand for speed: every address of the JSON output
//! goes through here.

/// Serializes an address as a `0x…` hex string, as every address in the JSON output is.
/// It is written by hand into a stack buffer: going through `fmt` cost a trace a tenth of its
/// time, at three addresses per fault.
pub fn hex<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buffer = [0u8; 18];
    serializer.serialize_str(hex_digits(*value, &mut buffer))
}

/// Serializes an address that may be missing: a hex string, or null.
pub fn optional_hex<S: serde::Serializer>(
    value: &Option<u64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => hex(value, serializer),
        None => serializer.serialize_none(),
    }
}

/// The JSON Schema of what [`hex`] writes, for fields that name it with `#[schemars(with)]`.
pub struct Hex;

impl schemars::JsonSchema for Hex {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Hex".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An address: 0x and lowercase hex digits without leading zeros.",
            "type": "string",
            "pattern": "^0x(0|[1-9a-f][0-9a-f]{0,15})$"
        })
    }
}

/// `value` as `0x` and its lowercase hex digits, without leading zeros (`0x0` for zero).
pub fn hex_digits(value: u64, buffer: &mut [u8; 18]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - value.leading_zeros()).div_ceil(4).max(1) as usize;
    buffer[0] = b'0';
    buffer[1] = b'x';
    for i in 0..digits {
        buffer[1 + digits - i] = DIGITS[(value >> (4 * i)) as usize & 0xf];
    }
    // SAFETY: every byte written is an ASCII digit, `0` or `x`.
    unsafe { std::str::from_utf8_unchecked(&buffer[..2 + digits]) }
}

#[cfg(test)]
mod tests {
    use super::hex_digits;

    #[test]
    fn hex_digits_match_the_formatter() {
        for value in [0, 1, 0xf, 0x10, 0x7f80_93b6_9000, u64::MAX, 1 << 63, 0x1000] {
            let mut buffer = [0; 18];
            assert_eq!(hex_digits(value, &mut buffer), format!("{value:#x}"));
        }
    }
}
