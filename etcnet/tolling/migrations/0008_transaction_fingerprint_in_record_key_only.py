"""The payload's fingerprint kept once, in the record key: the transaction row
drops its copy (about 70 bytes a row of the store). Going back, the column
returns and takes each transaction's fingerprint from its record key."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tolling", "0007_record_keys"),
    ]

    operations = [
        # Backwards only, and last: each transaction's fingerprint from its key.
        migrations.RunSQL(
            migrations.RunSQL.noop,
            "UPDATE tolling_tolltransaction SET payload_hash = k.payload_hash"
            " FROM tolling_recordkey k WHERE k.transaction_id = tolling_tolltransaction.id",
            elidable=False,
        ),
        # A default in the state only, so that the column comes back filled ('').
        migrations.AlterField(
            model_name="tolltransaction",
            name="payload_hash",
            field=models.CharField(max_length=64, default=""),
        ),
        migrations.RemoveField(
            model_name="tolltransaction",
            name="payload_hash",
        ),
    ]
