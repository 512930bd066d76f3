"""The performance benchmark: ``python -m benchmarks [--runs N] [--quick] [--json]``, from the project folder.

Measures, on the machine it runs on, what the project promises to be fast:
cold and warm ``invoke up`` on each DynamoDB engine (moto, and AWS's DynamoDB
Local where it can run), DynamoDB seeding on each engine against two
references on the same endpoint in the same run (one ``put_item`` per item,
and the engine's ceiling: raw BatchWriteItem calls of the same items from
four threads with nothing else going on), the Cognito id sync against one
UPDATE per user over a new connection, the peak memory of ``ddb.seed
--synthetic`` at two sizes, and ``invoke --list``.
Each time is the median of ``--runs`` runs (three times as many for the
sub-second ones); the peak memory is read once per size (it is a high-water
mark, not a time). Every figure is printed next to its target with pass or miss.

Modules: ``figures`` (options, sizes, targets, ratios, the report: pure),
``commands`` (``invoke`` timed as a separate process), ``inprocess`` (seeding
and the sync against embedded stacks it starts), ``run`` (the whole run and the
exit code). ``invoke`` is run by ``tests.helpers.Cli``, the runner the tests use.

Assumes Linux (``resource.getrusage`` for peak RSS), the project venv and the
project folder as the working directory (so ``bootstrap`` and ``tests`` import).
"""
