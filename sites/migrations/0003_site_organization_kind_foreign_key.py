"""A site's organisation is of kind 'site', enforced by the database: (organization_id,
organization_kind) references (id, kind) of trialhub_organization, and organization_kind is
pinned to 'site' by a check constraint."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("sites", "0002_initial"), ("trialhub", "0002_organization_kind_foreign_keys")]

    operations = [
        migrations.RunSQL(
            sql=(
                "ALTER TABLE sites_site ADD CONSTRAINT site_organization_is_site_fk "
                "FOREIGN KEY (organization_id, organization_kind) "
                "REFERENCES trialhub_organization (id, kind)"
            ),
            reverse_sql="ALTER TABLE sites_site DROP CONSTRAINT site_organization_is_site_fk",
        )
    ]
