//! [`ArtifactIndex`] on SQLite: table `artifacts`.

use super::{
    key_ids_json, opt_hex, parse_hash, parse_key_ids, parse_opt_hash, sort_key, DbResult as _,
    SqliteStore,
};
use crate::meta::{ArtifactMeta, ArtifactQuery, MAX_LIST};
use crate::{ArtifactIndex, StoreError};
use rusqlite::{params, Connection, Row};

const ARTIFACT_COLUMNS: &str = "id, product, format, mode, version, input_sha256, output_sha256, \
     detached_sha256, provenance_sha256, key_ids, client, created, name";

fn decode_artifact(row: &Row<'_>) -> Result<ArtifactMeta, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("artifact row: {e}"));
    let id: String = row.get(0).db()?;
    Ok(ArtifactMeta {
        product: row.get(1).db()?,
        format: row.get(2).db()?,
        mode: row.get(3).db()?,
        version: row.get(4).db()?,
        input_sha256: parse_hash("input_sha256", &row.get::<_, String>(5).db()?)
            .map_err(corrupt)?,
        output_sha256: parse_hash("output_sha256", &row.get::<_, String>(6).db()?)
            .map_err(corrupt)?,
        detached_sha256: parse_opt_hash("detached_sha256", row.get(7).db()?).map_err(corrupt)?,
        provenance_sha256: parse_opt_hash("provenance_sha256", row.get(8).db()?)
            .map_err(corrupt)?,
        key_ids: parse_key_ids(&row.get::<_, String>(9).db()?).map_err(corrupt)?,
        client: row.get(10).db()?,
        created: row.get(11).db()?,
        name: row.get(12).db()?,
        id,
    })
}

pub(super) fn insert_artifact(conn: &Connection, m: &ArtifactMeta) -> Result<(), StoreError> {
    let created_key = sort_key("created", &m.created)?;
    conn.execute(
        &format!("INSERT INTO artifacts ({ARTIFACT_COLUMNS}, created_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
        params![
            m.id,
            m.product,
            m.format,
            m.mode,
            m.version,
            hex::encode(m.input_sha256),
            hex::encode(m.output_sha256),
            opt_hex(&m.detached_sha256),
            opt_hex(&m.provenance_sha256),
            key_ids_json(&m.key_ids),
            m.client,
            m.created,
            m.name,
            created_key,
        ],
    ).db()?;
    Ok(())
}

impl ArtifactIndex for SqliteStore {
    fn artifact_blobs(&self) -> Result<Vec<crate::Hash32>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(
                "SELECT input_sha256, output_sha256, detached_sha256, provenance_sha256 \
                 FROM artifacts",
            )
            .db()?;
        let mut rows = st.query([]).db()?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().db()? {
            for i in 0..4 {
                if let Some(h) = r.get::<_, Option<String>>(i).db()? {
                    out.push(super::parse_hash("blob", &h).map_err(StoreError::Corrupt)?);
                }
            }
        }
        Ok(out)
    }

    fn put_artifact(&self, m: &ArtifactMeta) -> Result<(), StoreError> {
        m.validate()?;
        let conn = self.lock();
        insert_artifact(&conn, m)
    }

    fn artifact(&self, id: &str) -> Result<Option<ArtifactMeta>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(&format!(
                "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = ?1"
            ))
            .db()?;
        let mut rows = st.query(params![id]).db()?;
        match rows.next().db()? {
            Some(r) => Ok(Some(decode_artifact(r)?)),
            None => Ok(None),
        }
    }

    fn list_artifacts(
        &self,
        product: &str,
        q: &ArtifactQuery,
    ) -> Result<Vec<ArtifactMeta>, StoreError> {
        let since = q
            .since
            .as_deref()
            .map(|t| sort_key("since", t))
            .transpose()?;
        let until = q
            .until
            .as_deref()
            .map(|t| sort_key("until", t))
            .transpose()?;
        let digest = q.digest.as_ref().map(hex::encode);
        let limit = q.limit.unwrap_or(MAX_LIST).min(MAX_LIST);
        let limit = i64::try_from(limit).unwrap_or(0);
        let conn = self.lock();
        let mut st = conn
            .prepare(&format!(
                "SELECT {ARTIFACT_COLUMNS} FROM artifacts
             WHERE product = ?1
               AND (?2 IS NULL OR version = ?2)
               AND (?3 IS NULL OR input_sha256 = ?3 OR output_sha256 = ?3
                    OR detached_sha256 = ?3 OR provenance_sha256 = ?3)
               AND (?4 IS NULL OR created_key >= ?4)
               AND (?5 IS NULL OR created_key < ?5)
             ORDER BY created_key DESC, id
             LIMIT ?6"
            ))
            .db()?;
        let mut rows = st
            .query(params![product, q.version, digest, since, until, limit])
            .db()?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().db()? {
            out.push(decode_artifact(r)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A version-2 database (no `name` column) opens, migrates, keeps its rows (name `None`)
    /// and stores names from then on.
    #[test]
    fn a_version_2_database_gains_artifact_names() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("db");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(crate::sqlite::SCHEMA_V1).unwrap();
            c.execute_batch(crate::sqlite::jobs::SCHEMA_V2).unwrap();
            c.pragma_update(None, "user_version", 2).unwrap();
            c.execute(
                "INSERT INTO artifacts (id, product, format, mode, version, input_sha256, \
                 output_sha256, detached_sha256, provenance_sha256, key_ids, client, created, \
                 created_key) VALUES ('old', 'widget', 'raw', 'embedded', NULL, ?1, ?1, NULL, \
                 NULL, '[]', 'ci', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000000000Z')",
                params![hex::encode([3u8; 32])],
            )
            .unwrap();
        }
        let s = SqliteStore::open(&p).unwrap();
        let old = s.artifact("old").unwrap().expect("old row kept");
        assert_eq!(old.name, None);
        assert_eq!(old.product, "widget");
        let new = ArtifactMeta {
            id: "new".into(),
            name: Some("app.img".into()),
            version: Some("1.2.3+4".into()),
            created: "2026-01-02T00:00:00Z".into(),
            ..old
        };
        s.put_artifact(&new).unwrap();
        assert_eq!(s.artifact("new").unwrap(), Some(new));
        let v: i64 = s
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, crate::sqlite::SCHEMA_VERSION);
    }
}
