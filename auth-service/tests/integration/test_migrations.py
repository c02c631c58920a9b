import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from auth_service.db import MIGRATIONS_DIR, VERSION_TABLE, Base, migrate_database
from shop_common.database import create_engine, head_revision
from shop_common.migrate import NAMING_CONVENTION

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


def names_in_models() -> set[tuple[str, str, str | None]]:
    """(table, kind, name) of every constraint and index, as NAMING_CONVENTION names them."""
    kinds = {
        "PrimaryKeyConstraint": "pk",
        "ForeignKeyConstraint": "fk",
        "UniqueConstraint": "uq",
        "CheckConstraint": "ck",
    }
    names: set[tuple[str, str, str | None]] = set()
    for table in Base.metadata.sorted_tables:
        names |= {(table.name, kinds[type(c).__name__], str(c.name)) for c in table.constraints}
        names |= {(table.name, "ix", str(index.name)) for index in table.indexes}
    return names


async def names_in_database(url: str) -> set[tuple[str, str, str | None]]:
    def read(connection: Connection) -> set[tuple[str, str, str | None]]:
        inspector = inspect(connection)
        names = set()
        for table in Base.metadata.tables:
            names.add((table, "pk", inspector.get_pk_constraint(table)["name"]))
            for kind, found in (
                ("fk", inspector.get_foreign_keys(table)),
                ("uq", inspector.get_unique_constraints(table)),
                ("ck", inspector.get_check_constraints(table)),
                ("ix", inspector.get_indexes(table)),
            ):
                # PostgreSQL lists a unique constraint's own index too: named as the constraint.
                names |= {
                    (table, kind, item["name"])
                    for item in found
                    if "duplicates_constraint" not in item
                }
        return names

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def test_migrated_names_are_the_shared_naming_conventions(database_url):
    # Databases migrated before auth-service took shop_common.migrate.NAMING_CONVENTION
    # (ix_%(column_0_label)s) must hold the names the convention gives the models now, or
    # the next autogenerated migration would rename (or miss) them.
    assert Base.metadata.naming_convention == NAMING_CONVENTION
    assert await names_in_database(database_url) == names_in_models()
