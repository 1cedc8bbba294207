//! Session tokens: drawing them from the OS CSPRNG, and their hex form (for `/admin` URLs).

use durable_ws_core::frame::TOKEN_LEN;
use durable_ws_core::Token;

/// A fresh random token.
pub(crate) fn random_token() -> Result<Token, getrandom::Error> {
    let mut bytes = [0; TOKEN_LEN];
    getrandom::fill(&mut bytes)?;
    Ok(Token(bytes))
}

/// The token as 32 lowercase hex digits ([`Token::to_hex`]).
pub fn token_to_hex(token: &Token) -> String {
    token.to_hex()
}

/// Parses 32 hex digits; `None` for anything else ([`Token::from_hex`]).
pub fn token_from_hex(hex: &str) -> Option<Token> {
    Token::from_hex(hex)
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
