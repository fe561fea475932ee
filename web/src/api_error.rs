//! The REST API's errors: an HTTP status and a JSON body whose `code` is
//! stable (clients branch on it; the message is for people). Phone errors keep
//! the `Sono.*` codes the Flash client gets; the API's own are snake_case.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use sono_actors::cluster::Misdirected;
use sono_actors::control::PhoneFailure;
use sono_rtmp::phone::code;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub sip_code: Option<u16>,
    pub reason: Option<String>,
    /// For 421: the node that holds what was asked, and where it is.
    pub node: Option<Box<Misdirected>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            sip_code: None,
            reason: None,
            node: None,
        }
    }

    /// The request carries another node's token: the proxy sent it to the
    /// wrong node (RFC 9110 §15.5.20); the body names the right one.
    pub fn misdirected(to: Misdirected) -> ApiError {
        let whereto = to
            .address
            .as_deref()
            .map_or(String::new(), |a| format!(" ({a})"));
        let mut e = ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected",
            format!(
                "this token belongs to node {}{whereto}; send the request there (route on the token's prefix)",
                to.node
            ),
        );
        e.node = Some(Box::new(to));
        e
    }

    /// The node is draining: new sessions go to another node.
    pub fn draining() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this node is draining (leaving service); connect to another node",
        )
    }

    /// No `Authorization: Bearer` header nor `access_token` parameter.
    pub fn missing_token() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send the connection's token or the admin key as \"Authorization: Bearer TOKEN\"",
        )
    }

    /// `access_token` in the URL of an endpoint that is not an event stream.
    pub fn token_in_url() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "access_token in the URL is accepted only by the event streams (a URL ends up in logs); send \"Authorization: Bearer TOKEN\"",
        )
    }

    /// A token that does not control what was asked.
    pub fn invalid_token() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_token",
            "this token does not control that connection",
        )
    }

    pub fn admin_only() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_only",
            "only the admin key (http.admin_key) may do this",
        )
    }

    /// (Admin only) no live connection has this id.
    pub fn connection_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "connection_not_found",
            "no live connection has this id",
        )
    }

    /// The token's connection has closed; the token died with it.
    pub fn connection_closed() -> ApiError {
        ApiError::new(
            StatusCode::GONE,
            "connection_closed",
            "the connection this token controlled has closed",
        )
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
    }

    /// A phone request's failure, with the status that fits its code.
    pub fn phone(f: PhoneFailure) -> ApiError {
        let status = match f.code {
            code::CALL_NO_URI | code::CALL_INVALID_CODE | code::DTMF_INVALID => {
                StatusCode::BAD_REQUEST
            }
            code::CALL_FORBIDDEN => StatusCode::FORBIDDEN,
            code::CONNECTION_CLOSED => StatusCode::GONE,
            // The connection's state does not allow it (no call, a call
            // already, the registrar refused, no capacity left).
            _ => StatusCode::CONFLICT,
        };
        ApiError {
            status,
            code: f.code.to_owned(),
            message: f.description,
            sip_code: f.sip_code,
            reason: f.reason,
            node: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(c) = self.sip_code {
            error["sip_code"] = json!(c);
        }
        if let Some(r) = &self.reason {
            error["reason"] = json!(r);
        }
        if let Some(node) = &self.node {
            error["node"] = json!(node.node);
            if let Some(address) = &node.address {
                error["node_address"] = json!(address);
            }
        }
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer realm=\"sono\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "60"));
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.insert_header(("Retry-After", "1"));
        }
        response.json(json!({ "error": error }))
    }
}
