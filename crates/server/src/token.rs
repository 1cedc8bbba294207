//! Session tokens: drawing them from the OS CSPRNG, and their hex form (for `/admin` URLs).

use durable_ws_core::frame::TOKEN_LEN;
use durable_ws_core::Token;

/// A fresh random token.
pub(crate) fn random_token() -> Result<Token, getrandom::Error> {
    let mut bytes = [0; TOKEN_LEN];
    getrandom::fill(&mut bytes)?;
    Ok(Token(bytes))
}

/// The token as 32 lowercase hex digits.
pub fn token_to_hex(token: &Token) -> String {
    token.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 32 hex digits; `None` for anything else.
pub fn token_from_hex(hex: &str) -> Option<Token> {
    if hex.len() != 2 * TOKEN_LEN || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0; TOKEN_LEN];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(Token(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrips_and_rejects_garbage() {
        let token = random_token().unwrap();
        assert_eq!(token_from_hex(&token_to_hex(&token)), Some(token));
        assert_eq!(token_from_hex("abc"), None);
        assert_eq!(token_from_hex(&"zz".repeat(16)), None);
        assert_eq!(token_from_hex(&"é".repeat(16)), None);
    }
}
