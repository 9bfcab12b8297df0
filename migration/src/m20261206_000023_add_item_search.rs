//! Search of the item list (`GET /items?q=`) with each database's own text
//! search, accents and case ignored, title weighed above description.
//!
//! PostgreSQL: the `pp_search` configuration (`simple`, whose lexemes are
//! the lower-cased words, with `unaccent` in front for words that are not
//! plain ASCII, letters and digits mixed too; no stemming, so a word matches as typed, in any language), a
//! stored generated `tsvector` (title weight A, description B) and a GIN
//! index on it. `unaccent` is a trusted extension since PostgreSQL 13: the
//! owner of the database may create it. `down` leaves the extension, which
//! another schema in the database may use.
//!
//! SQLite: an FTS5 table (`unicode61 remove_diacritics 2`) kept by
//! triggers, keyed by the item's id. It is not an external-content table:
//! those are keyed by rowid, which VACUUM may renumber on a table whose key
//! is not an INTEGER PRIMARY KEY.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH CONFIGURATION pp_search (COPY = simple)",
    "ALTER TEXT SEARCH CONFIGURATION pp_search \
     ALTER MAPPING FOR hword, hword_part, word, numword, numhword, hword_numpart \
     WITH unaccent, simple",
    r#"ALTER TABLE "items" ADD COLUMN "search_vector" tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('pp_search'::regconfig, "title"), 'A')
        || setweight(to_tsvector('pp_search'::regconfig, "description"), 'B')
    ) STORED"#,
    r#"CREATE INDEX "idx_items_search_vector" ON "items" USING GIN ("search_vector")"#,
];

const POSTGRES_DOWN: &[&str] = &[
    r#"DROP INDEX "idx_items_search_vector""#,
    r#"ALTER TABLE "items" DROP COLUMN "search_vector""#,
    "DROP TEXT SEARCH CONFIGURATION pp_search",
];

const SQLITE_UP: &[&str] = &[
    r#"CREATE VIRTUAL TABLE "items_fts" USING fts5(
        "item_id" UNINDEXED, "title", "description",
        tokenize = 'unicode61 remove_diacritics 2'
    )"#,
    r#"INSERT INTO "items_fts" ("item_id", "title", "description")
        SELECT "id", "title", "description" FROM "items""#,
    r#"CREATE TRIGGER "items_fts_after_insert" AFTER INSERT ON "items" BEGIN
        INSERT INTO "items_fts" ("item_id", "title", "description")
            VALUES (NEW."id", NEW."title", NEW."description");
    END"#,
    r#"CREATE TRIGGER "items_fts_after_update" AFTER UPDATE OF "title", "description" ON "items" BEGIN
        DELETE FROM "items_fts" WHERE "item_id" = OLD."id";
        INSERT INTO "items_fts" ("item_id", "title", "description")
            VALUES (NEW."id", NEW."title", NEW."description");
    END"#,
    r#"CREATE TRIGGER "items_fts_after_delete" AFTER DELETE ON "items" BEGIN
        DELETE FROM "items_fts" WHERE "item_id" = OLD."id";
    END"#,
];

const SQLITE_DOWN: &[&str] = &[
    r#"DROP TRIGGER "items_fts_after_delete""#,
    r#"DROP TRIGGER "items_fts_after_update""#,
    r#"DROP TRIGGER "items_fts_after_insert""#,
    r#"DROP TABLE "items_fts""#,
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for statement in statements {
        manager
            .get_connection()
            .execute_unprepared(statement)
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => run(manager, POSTGRES_UP).await,
            _ => run(manager, SQLITE_UP).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => run(manager, POSTGRES_DOWN).await,
            _ => run(manager, SQLITE_DOWN).await,
        }
    }
}
