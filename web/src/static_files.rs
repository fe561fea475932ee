//! The files a browser loads: the demo page, sono.js with its TypeScript
//! declarations, and the invisible Flash phone. All are built into the binary,
//! so `sono` serves them with no files beside it.

use actix_web::HttpResponse;

const INDEX: &str = include_str!("../static/index.html");
const SONO_JS: &str = include_str!("../static/sono.js");
const SONO_D_TS: &str = include_str!("../static/sono.d.ts");
/// Built from `flash_phone/` by `build.rs` with Haxe; empty when Haxe was missing.
const FLASH_PHONE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flash_phone.swf"));

pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(INDEX)
}

/// Browsers ask for it on every page; an empty answer keeps their consoles clean.
pub async fn favicon() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

pub async fn sono_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SONO_JS)
}

pub async fn sono_d_ts() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/typescript; charset=utf-8")
        .body(SONO_D_TS)
}

pub async fn flash_phone() -> HttpResponse {
    if FLASH_PHONE.is_empty() {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("this sono was built without Haxe: no flash_phone.swf (scripts/install-deps.sh installs it)\n");
    }
    HttpResponse::Ok()
        .content_type("application/x-shockwave-flash")
        .body(FLASH_PHONE)
}
