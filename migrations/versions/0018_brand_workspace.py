"""Brand workspace (issue 16): brands get a contact address, a host name, footer links, a logo,
a favicon and an archive date; forums an access rule (public, verified customers, staff) and an
archive date; members a bio and an avatar. New tables: staff roles granted per brand, uploaded
images, badges, and follows of forums and tags.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 19:45:23.178024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_grants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "moderator", "agent", "brand_admin", name="brandrole", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column(
            "granted_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_staff_grants_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_id"],
            ["users.id"],
            name=op.f("fk_staff_grants_granted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_grants")),
        sa.UniqueConstraint(
            "user_id", "brand_id", "role", name=op.f("uq_staff_grants_user_id_brand_id_role")
        ),
    )
    with op.batch_alter_table("staff_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_grants_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_grants_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_badges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("badge", sa.String(length=40), nullable=False),
        sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_badges_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_badges")),
        sa.UniqueConstraint("user_id", "badge", name=op.f("uq_user_badges_user_id_badge")),
    )
    with op.batch_alter_table("user_badges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_badges_user_id"), ["user_id"], unique=False)

    op.create_table(
        "forum_follows",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("forum_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["forum_id"],
            ["forums.id"],
            name=op.f("fk_forum_follows_forum_id_forums"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_forum_follows_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "forum_id", name=op.f("pk_forum_follows")),
    )
    with op.batch_alter_table("forum_follows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forum_follows_forum_id"), ["forum_id"], unique=False)

    op.create_table(
        "tag_follows",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_tag_follows_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tag_follows_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "tag_id", name=op.f("pk_tag_follows")),
    )
    with op.batch_alter_table("tag_follows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tag_follows_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "uploads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "purpose",
            sa.Enum(
                "post",
                "article",
                "avatar",
                "logo",
                "favicon",
                name="uploadpurpose",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("storage", sa.String(length=10), nullable=False),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_uploads_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_uploads_owner_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_uploads_post_id_posts"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("key", name=op.f("uq_uploads_key")),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_uploads_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_uploads_post_id"), ["post_id"], unique=False)

    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("contact_email", sa.String(length=254), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("host", sa.String(length=253), nullable=True))
        batch_op.add_column(
            sa.Column(
                "footer_links",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )
        batch_op.add_column(sa.Column("logo_key", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("favicon_key", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_brands_host"), ["host"])

    with op.batch_alter_table("forums", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "access",
                sa.Enum(
                    "public", "verified", "staff", name="forumaccess", native_enum=False, length=20
                ),
                nullable=False,
                server_default="public",
            )
        )
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bio", sa.String(length=500), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("avatar_key", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("avatar_key")
        batch_op.drop_column("bio")

    with op.batch_alter_table("forums", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
        batch_op.drop_column("access")

    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_brands_host"), type_="unique")
        batch_op.drop_column("archived_at")
        batch_op.drop_column("favicon_key")
        batch_op.drop_column("logo_key")
        batch_op.drop_column("footer_links")
        batch_op.drop_column("host")
        batch_op.drop_column("contact_email")

    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uploads_post_id"))
        batch_op.drop_index(batch_op.f("ix_uploads_owner_id"))

    op.drop_table("uploads")
    with op.batch_alter_table("tag_follows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tag_follows_tag_id"))

    op.drop_table("tag_follows")
    with op.batch_alter_table("forum_follows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forum_follows_forum_id"))

    op.drop_table("forum_follows")
    with op.batch_alter_table("user_badges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_badges_user_id"))

    op.drop_table("user_badges")
    with op.batch_alter_table("staff_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_grants_user_id"))
        batch_op.drop_index(batch_op.f("ix_staff_grants_brand_id"))

    op.drop_table("staff_grants")
