//! `POST /v1/products/{p}/sign-batch`: several images in one request (`multipart/form-data`,
//! one file part per image, its filename the image name). Authentication, authorisation and the
//! query parameters are handled once; every part then goes through exactly the pipeline of a
//! single `sign` (spooled, prepared, signed or turned into a pending job, audited on its own).
//! The answer lists one result per part, in order: the HTTP status it would have had alone and
//! its body (a sign response, a pending job, or a problem document).

use super::*;
use axum::extract::Multipart;

/// Most images in one batch.
pub(super) const MAX_PARTS: usize = 256;

pub(super) async fn sign_batch(
    State(st): State<Shared>,
    Path(product): Path<String>,
    Query(q): Query<SignQuery>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    match sign_batch_inner(&st, &product, q, &headers, multipart).await {
        Ok(r) | Err(r) => r,
    }
}

async fn sign_batch_inner(
    st: &Shared,
    product: &str,
    q: SignQuery,
    headers: &HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, Response> {
    let (who, cfg, pcfg) = submitter(st, headers, product).await?;
    let refuse = |reason: String| {
        let st = st.clone();
        let who = who.name.clone();
        let product = product.to_string();
        async move {
            audit_denied(&st, &who, "sign", &product, &format!("batch: {reason}")).await;
            Problem::bad_request(reason).into_response()
        }
    };
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => return Err(refuse(format!("expected multipart/form-data: {e}")).await),
    };
    let params = match parse_params(&pcfg, &q) {
        Ok(x) => x,
        Err((reason, p)) => {
            audit_denied(st, &who.name, "sign", product, &reason).await;
            return Err(p.into_response());
        }
    };
    let mut results = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                // The rest of the body is unreadable; what was signed so far stays signed
                // (and audited), and the answer says where the batch stopped.
                let m = format!("part {}: {e}", results.len());
                audit_denied(st, &who.name, "sign", product, &format!("batch: {m}")).await;
                results.push(serde_json::json!({
                    "name": null,
                    "status": 400,
                    "body": Problem::bad_request(m),
                }));
                break;
            }
        };
        if results.len() == MAX_PARTS {
            let m = format!("a batch holds at most {MAX_PARTS} images");
            audit_denied(st, &who.name, "sign", product, &format!("batch: {m}")).await;
            results.push(
                serde_json::json!({"name": null, "status": 400, "body": Problem::bad_request(m)}),
            );
            break;
        }
        let mut q = q.clone();
        let name = field.file_name().map(str::to_string);
        if name.is_some() {
            q.name = name.clone();
        }
        let resp = match sign_upload(st, &who, &cfg, &pcfg, q, params, now_rfc3339(), field).await {
            Ok(r) | Err(r) => r,
        };
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .unwrap_or(serde_json::Value::Null);
        results.push(serde_json::json!({"name": name, "status": status, "body": body}));
    }
    if results.is_empty() {
        return Err(refuse("the batch holds no image".into()).await);
    }
    Ok(Json(serde_json::json!({ "product": product, "results": results })).into_response())
}
