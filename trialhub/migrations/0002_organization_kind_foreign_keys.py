"""Composite foreign keys so the database itself guarantees that a study's owner is a sponsor
and an engaged organisation is a CRO: (sponsor_id, sponsor_kind) must match (id, kind) of an
organisation, and sponsor_kind is pinned to 'sponsor' by a check constraint."""

from django.db import migrations

PAIRS = [
    ("trialhub_study", "sponsor", "study_sponsor_is_sponsor_fk"),
    ("trialhub_engagement", "cro", "engagement_cro_is_cro_fk"),
]


class Migration(migrations.Migration):
    dependencies = [("trialhub", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}_id, {column}_kind) "
                f"REFERENCES trialhub_organization (id, kind)"
            ),
            reverse_sql=f"ALTER TABLE {table} DROP CONSTRAINT {name}",
        )
        for table, column, name in PAIRS
    ]
