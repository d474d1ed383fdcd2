use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// argon2id with the crate's defaults (OWASP minimum) and a random salt; run it off the async threads.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let hash = Argon2::default().hash_password(password.as_bytes()).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    Ok(hash.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = super::hash_password("s3cret").unwrap();
        let b = super::hash_password("s3cret").unwrap();
        assert_ne!(a, b);
        assert!(super::verify_password("s3cret", &a));
        assert!(!super::verify_password("wrong", &a));
        assert!(!super::verify_password("s3cret", "not a hash"));
    }
}
