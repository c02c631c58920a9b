import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from auth_service.db import MIGRATIONS_DIR, VERSION_TABLE, Base, migrate_database
from shop_common.database import create_engine, head_revision

pytestmark = pytest.mark.anyio
OUR_TABLES = {"account", "login_session", "used_refresh_token", VERSION_TABLE}


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: MigrationContext.configure(
                    c, opts={"version_table": VERSION_TABLE}
                ).get_current_revision()
            )
    finally:
        await engine.dispose()


async def test_migrations_build_the_schema_from_an_empty_database(empty_database_url):
    assert await table_names(empty_database_url) == set()
    await migrate_database(empty_database_url)
    assert await table_names(empty_database_url) == OUR_TABLES
    assert await current_revision(empty_database_url) == head_revision(MIGRATIONS_DIR)


async def test_migrated_schema_matches_the_models(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(
                        c, opts={"version_table": VERSION_TABLE, "compare_type": True}
                    ),
                    Base.metadata,
                )
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_migrating_twice_changes_nothing(database_url):
    await migrate_database(database_url)
    assert await current_revision(database_url) == head_revision(MIGRATIONS_DIR)


async def test_migrations_leave_another_services_tables_alone(empty_database_url):
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            # What product-service keeps in a shared database, and alembic's default table.
            await connection.execute(text("CREATE TABLE product (id INTEGER PRIMARY KEY)"))
            await connection.execute(
                text("CREATE TABLE product_alembic_version (version_num VARCHAR(32) NOT NULL)")
            )
            await connection.execute(
                text("INSERT INTO product_alembic_version VALUES ('productrev')")
            )
            await connection.execute(
                text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            )
        await migrate_database(empty_database_url)
        async with engine.connect() as connection:
            version = await connection.execute(
                text("SELECT version_num FROM product_alembic_version")
            )
            assert version.scalar_one() == "productrev"
    finally:
        await engine.dispose()
    assert await table_names(empty_database_url) == OUR_TABLES | {
        "product",
        "product_alembic_version",
        "alembic_version",
    }
    assert await current_revision(empty_database_url) == head_revision(MIGRATIONS_DIR)


async def test_downgrade_to_base_removes_only_our_tables(empty_database_url):
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE product (id INTEGER PRIMARY KEY)"))
    finally:
        await engine.dispose()
    await migrate_database(empty_database_url)
    await migrate_database(empty_database_url, revision="base", downgrade=True)
    assert await table_names(empty_database_url) == {"product", VERSION_TABLE}
