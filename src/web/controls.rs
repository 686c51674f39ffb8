//! `GET /api/controls`, `PUT /api/controls/{id}`, `POST /api/controls/{id}/reset`: the camera's
//! V4L2 controls (see [`crate::camera::controls`] and docs/API.md).
//!
//! The control ioctls are quick (a few syscalls on a descriptor opened `O_NONBLOCK`), so they
//! are called inline on the web thread; a vanished device fails at `open` with ENODEV/ENOENT
//! instead of blocking. The recorder is not involved: controls go through a second descriptor
//! on the same device node, never one that streams.
//!
//! Bodies are `{"value":V}` with V a JSON number, `true`/`false` or a string (string
//! controls), parsed by [`parse_value_body`]. Ids are `u32` path segments; anything else does
//! not match the route (404).

use crate::camera::controls::{Control, ControlError, DeviceControls, Input, Kind, Value, flag};
use crate::web::status::JsonStr;
use core::fmt::Write as _;
use picoserve::io::Read;
use picoserve::response::{Content, IntoResponse, Response, ResponseWriter, StatusCode};
use picoserve::ResponseSent;
use std::cell::RefCell;

/// The controls of the recorder's camera, or `None` for a source without any.
pub type Shared = RefCell<Option<DeviceControls>>;

/// A JSON body built per request (the controls list of a camera runs to a few KiB).
pub struct JsonText(pub String);

impl Content for JsonText {
    fn content_type(&self) -> &'static str {
        "application/json"
    }
    fn content_length(&self) -> usize {
        self.0.len()
    }
    async fn write_content<W: picoserve::io::Write>(self, mut writer: W) -> Result<(), W::Error> {
        writer.write_all(self.0.as_bytes()).await
    }
}

/// A status code and a JSON body.
pub struct Reply(pub StatusCode, pub String);

impl Reply {
    fn error(status: StatusCode, msg: &str) -> Reply {
        Reply(status, format!("{{\"error\":{}}}", JsonStr(msg)))
    }

    fn from_error(e: &ControlError) -> Reply {
        let status = match e {
            ControlError::UnknownId { .. } => StatusCode::NOT_FOUND,
            ControlError::Invalid(_) | ControlError::ReadOnly(_) => StatusCode::BAD_REQUEST,
            ControlError::Busy(_) => StatusCode::CONFLICT,
            ControlError::Gone(_) | ControlError::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Reply::error(status, &e.to_string())
    }

    fn into_response(self) -> impl IntoResponse {
        let busy = self.0 == StatusCode::SERVICE_UNAVAILABLE;
        let r = Response::new(self.0, JsonText(self.1)).with_header("Cache-Control", "no-store");
        // `Result` is picoserve's either-response: 503 also says when to try again.
        if busy { Err(r.with_header("Retry-After", "2")) } else { Ok(r) }
    }
}

/// Appends one value as JSON.
fn value_json(o: &mut String, v: Option<&Value>) {
    let _ = match v {
        None => write!(o, "null"),
        Some(Value::Int(n)) => write!(o, "{n}"),
        Some(Value::Bool(b)) => write!(o, "{b}"),
        Some(Value::Text(s)) => write!(o, "{}", JsonStr(s)),
    };
}

/// Appends one control as the JSON object of docs/API.md.
pub fn control_json(o: &mut String, c: &Control) {
    let _ = write!(
        o,
        "{{\"id\":{},\"name\":{},\"category\":{},\"type\":\"{}\",\"min\":{},\"max\":{},\"step\":{},\"default\":",
        c.id,
        JsonStr(&c.name),
        JsonStr(&c.category),
        c.kind.name(),
        c.min,
        c.max,
        c.step
    );
    let default = match c.kind {
        Kind::Boolean => Some(Value::Bool(c.default != 0)),
        Kind::Button | Kind::String | Kind::Compound(_) => None,
        _ => Some(Value::Int(c.default)),
    };
    value_json(o, default.as_ref());
    o.push_str(",\"value\":");
    value_json(o, c.value.as_ref());
    if matches!(c.kind, Kind::Menu | Kind::IntegerMenu) {
        o.push_str(",\"menu\":[");
        for (i, m) in c.menu.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{{\"index\":{},\"name\":{}", m.index, JsonStr(&m.name));
            if let Some(v) = m.value {
                let _ = write!(o, ",\"value\":{v}");
            }
            o.push('}');
        }
        o.push(']');
    }
    let _ = write!(o, ",\"read_only\":{},\"inactive\":{},\"flags\":[", c.read_only(), c.inactive());
    let mut first = true;
    for (bit, name) in flag::NAMES {
        if c.flags & bit != 0 {
            if !first {
                o.push(',');
            }
            first = false;
            let _ = write!(o, "\"{name}\"");
        }
    }
    o.push_str("]}");
}

/// `{"controls":[...]}`.
pub fn list_json(controls: &[Control]) -> String {
    let mut o = String::with_capacity(256 + controls.len() * 256);
    o.push_str("{\"controls\":[");
    for (i, c) in controls.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        control_json(&mut o, c);
    }
    o.push_str("]}");
    o
}

fn one_json(c: &Control) -> String {
    let mut o = String::with_capacity(512);
    control_json(&mut o, c);
    o
}

/// `GET /api/controls`.
pub fn list(shared: &Shared) -> impl IntoResponse {
    let mut guard = shared.borrow_mut();
    let reply = match guard.as_mut() {
        None => Reply(StatusCode::OK, "{\"controls\":[]}".into()),
        Some(dc) => match dc.list() {
            Ok(l) => Reply(StatusCode::OK, list_json(l)),
            Err(e) => Reply::from_error(&e),
        },
    };
    drop(guard);
    reply.into_response()
}

/// Parses a request body `{"value":V}`: V a JSON number, `true`, `false` or a string. Any
/// other member, a missing `value` or trailing text is an error naming what was wrong.
pub fn parse_value_body(body: &[u8]) -> Result<Input, String> {
    use super::json::{parse_object, Value as J};
    let o = parse_object(body).map_err(|e| format!("{e} (the body is a JSON object like {{\"value\":128}})"))?;
    if let Some((k, _, _)) = o.members.iter().find(|(k, _, _)| k != "value") {
        return Err(format!("unknown key {} (the body is {{\"value\":V}})", JsonStr(k)));
    }
    match o.get("value") {
        None => Err("expected \"value\" in the body, like {\"value\":128}".into()),
        Some(J::Bool(b)) => Ok(Input::Bool(*b)),
        Some(J::Str(t)) => Ok(Input::Text(t.clone())),
        // Integers as i64; anything else (a fraction, an exponent, out of range) keeps its text.
        Some(J::Num(t)) => match t.parse::<i64>() {
            Ok(v) => Ok(Input::Int(v)),
            Err(_) => Ok(Input::OtherNumber(t.clone())),
        },
        Some(v) => Err(format!("\"value\" must be a number, true, false or a string, not {}", v.type_name())),
    }
}


/// What a mutation does once its id and body are known.
enum Action {
    Set(Input),
    Reset,
}

fn apply(shared: &Shared, id: u32, action: Action) -> Reply {
    let mut guard = shared.borrow_mut();
    let Some(dc) = guard.as_mut() else {
        return Reply::error(StatusCode::NOT_FOUND, &format!("no control {id}: the camera has no controls"));
    };
    let r = match &action {
        Action::Set(v) => dc.set(id, v),
        Action::Reset => dc.reset(id),
    };
    match r {
        Ok(c) => {
            log::info!(
                "controls: {} {} ({}) -> {}",
                if matches!(action, Action::Reset) { "reset" } else { "set" },
                c.name,
                c.id,
                c.value.as_ref().map_or("(no value)".to_string(), |v| v.to_string())
            );
            Reply(StatusCode::OK, one_json(&c))
        }
        Err(e) => Reply::from_error(&e),
    }
}

/// The controls of every camera (the first camera first), for the services below: each picks
/// its camera from `?camera=` (the first without it; an unknown one is 404, key `camera`).
#[derive(Clone, Copy)]
pub struct PerCamera<'a> {
    pub cameras: &'a crate::web::percam::Cameras,
    pub controls: &'a [Shared],
}

impl<'a> PerCamera<'a> {
    fn pick(&self, parts: &picoserve::request::RequestParts<'_>) -> Result<&'a Shared, crate::web::api::ApiError> {
        let i = self.cameras.pick_or_error(parts)?;
        Ok(&self.controls[i.min(self.controls.len() - 1)])
    }
}

/// `GET /api/controls`.
pub struct ListService<'a>(pub PerCamera<'a>);

impl picoserve::routing::RequestHandlerService<(), ()> for ListService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _params: (),
        request: picoserve::request::Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let picked = self.0.pick(&request.parts);
        let conn = request.body_connection.finalize().await?;
        match picked {
            Ok(shared) => list(shared).write_to(conn, response_writer).await,
            Err(e) => e.write_to(conn, response_writer).await,
        }
    }
}

/// `PUT /api/controls/{id}` with `{"value":V}`.
pub struct SetService<'a>(pub PerCamera<'a>);

impl picoserve::routing::RequestHandlerService<(), (u32,)> for SetService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        (id,): (u32,),
        mut request: picoserve::request::Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let shared = match self.0.pick(&request.parts) {
            Ok(s) => s,
            Err(e) => return e.write_to(request.body_connection.finalize().await?, response_writer).await,
        };
        let reply = match request.body_connection.body().read_all().await {
            Ok(body) => match parse_value_body(body) {
                Ok(v) => apply(shared, id, Action::Set(v)),
                Err(m) => Reply::error(StatusCode::BAD_REQUEST, &m),
            },
            Err(_) => Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"),
        };
        reply.into_response().write_to(request.body_connection.finalize().await?, response_writer).await
    }
}

/// `POST /api/controls/{id}/reset`.
pub struct ResetService<'a>(pub PerCamera<'a>);

impl picoserve::routing::RequestHandlerService<(), (u32,)> for ResetService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        (id,): (u32,),
        request: picoserve::request::Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let picked = self.0.pick(&request.parts);
        let conn = request.body_connection.finalize().await?;
        match picked {
            Ok(shared) => apply(shared, id, Action::Reset).into_response().write_to(conn, response_writer).await,
            Err(e) => e.write_to(conn, response_writer).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::controls::MenuItem;

    #[test]
    fn value_bodies_parse_numbers_bools_and_strings() {
        assert_eq!(parse_value_body(br#"{"value":128}"#), Ok(Input::Int(128)));
        assert_eq!(parse_value_body(b" { \"value\" : -5 } \n"), Ok(Input::Int(-5)));
        assert_eq!(parse_value_body(br#"{"value":true}"#), Ok(Input::Bool(true)));
        assert_eq!(parse_value_body(br#"{"value":false}"#), Ok(Input::Bool(false)));
        assert_eq!(parse_value_body(br#"{"value":"a\"b\u00e9"}"#), Ok(Input::Text("a\"bé".into())));
        assert_eq!(parse_value_body(br#"{"value":1.5}"#), Ok(Input::OtherNumber("1.5".into())));
        assert_eq!(parse_value_body(br#"{"value":1e3}"#), Ok(Input::OtherNumber("1e3".into())));
        assert_eq!(
            parse_value_body(br#"{"value":99999999999999999999}"#),
            Ok(Input::OtherNumber("99999999999999999999".into()))
        );
        assert_eq!(parse_value_body(br#"{"value":-9223372036854775808}"#), Ok(Input::Int(i64::MIN)));
    }

    #[test]
    fn malformed_value_bodies_are_refused_with_a_reason() {
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"value\"}",
            b"{\"value\":}",
            b"{\"value\":01}",
            b"{\"value\":-}",
            b"{\"value\":1.}",
            b"{\"value\":null}",
            b"{\"value\":[1]}",
            b"{\"value\":1,\"x\":2}",
            b"{\"value\":1} x",
            b"{\"value\":\"unterminated}",
            b"{\"value\":\"\\q\"}",
            b"{\"value\":\"\xff\"}",
            b"{\"value\":tru}",
        ] {
            assert!(parse_value_body(bad).is_err(), "{:?} was accepted", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_value_body(br#"{"val":1}"#), Err("unknown key \"val\" (the body is {\"value\":V})".into()));
    }

    #[test]
    fn control_json_has_the_api_shape() {
        let c = Control {
            id: 9963776,
            name: "Power \"Line\"".into(),
            category: "User Controls".into(),
            kind: Kind::Menu,
            min: 0,
            max: 2,
            step: 1,
            default: 1,
            value: Some(Value::Int(2)),
            menu: vec![
                MenuItem { index: 0, name: "Disabled".into(), value: None },
                MenuItem { index: 2, name: "60 Hz".into(), value: None },
            ],
            flags: flag::INACTIVE | flag::SLIDER,
        };
        let b = Control { kind: Kind::Boolean, default: 1, value: Some(Value::Bool(false)), menu: vec![], flags: 0, ..c.clone() };
        let j: serde_json::Value = serde_json::from_str(&list_json(&[c, b])).unwrap();
        let m = &j["controls"][0];
        assert_eq!(m["id"], 9963776);
        assert_eq!(m["name"], "Power \"Line\"");
        assert_eq!(m["type"], "menu");
        assert_eq!(m["value"], 2);
        assert_eq!(m["default"], 1);
        assert_eq!(m["menu"][1]["index"], 2);
        assert_eq!(m["menu"][1]["name"], "60 Hz");
        assert_eq!(m["inactive"], true);
        assert_eq!(m["read_only"], false);
        assert_eq!(m["flags"], serde_json::json!(["inactive", "slider"]));
        let b = &j["controls"][1];
        assert_eq!(b["type"], "boolean");
        assert_eq!(b["value"], false);
        assert_eq!(b["default"], true);
        assert!(b.get("menu").is_none());
    }

    #[test]
    fn errors_map_to_the_api_status_codes() {
        let dev = "/dev/video0".to_string();
        assert_eq!(Reply::from_error(&ControlError::UnknownId { id: 7, device: dev }).0, StatusCode::NOT_FOUND);
        assert_eq!(Reply::from_error(&ControlError::Invalid("x".into())).0, StatusCode::BAD_REQUEST);
        assert_eq!(Reply::from_error(&ControlError::ReadOnly("x".into())).0, StatusCode::BAD_REQUEST);
        assert_eq!(Reply::from_error(&ControlError::Busy("x".into())).0, StatusCode::CONFLICT);
        assert_eq!(Reply::from_error(&ControlError::Gone("x".into())).0, StatusCode::SERVICE_UNAVAILABLE);
        let r = Reply::from_error(&ControlError::Invalid("Brightness: 300 is out of range 0..=255 (step 1)".into()));
        let j: serde_json::Value = serde_json::from_str(&r.1).unwrap();
        assert_eq!(j["error"], "Brightness: 300 is out of range 0..=255 (step 1)");
    }
}
