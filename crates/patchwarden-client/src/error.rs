//! What can go wrong talking to a server.

use patchwarden_api::v1::problem::{Problem, ProblemCode};

/// Every error of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client could not be set up (a bad URL for the trust asked, a TLS setting).
    #[error("client configuration: {0}")]
    Config(String),
    /// The server could not be reached or the connection failed (DNS, refused, TLS, a pin
    /// that does not match, a timeout).
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// The server answered with an error.
    #[error("the server refused: {0}")]
    Problem(Problem),
    /// The server's answer is not what the API says.
    #[error("the server's {what} does not decode: {reason}")]
    Decode { what: &'static str, reason: String },
    /// The server's answer is longer than the client reads.
    #[error("the server's answer is longer than {max} bytes")]
    TooLarge { max: usize },
    /// A local problem preparing a request (signing key, compression).
    #[error("{0}")]
    Local(String),
}

impl ClientError {
    pub(crate) fn transport(e: reqwest::Error) -> ClientError {
        // reqwest's Display leaves the cause (the TLS alert, the refused connection) to its
        // source chain, which is what a person needs to see.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        ClientError::Transport(text)
    }

    /// The server's problem code, when the server answered with one.
    pub fn code(&self) -> Option<ProblemCode> {
        match self {
            ClientError::Problem(p) => Some(p.code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Problem(p) => Some(p.status),
            _ => None,
        }
    }
}
