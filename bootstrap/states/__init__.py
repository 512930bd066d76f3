"""Named states of the local environment: the app database, the DynamoDB table and the Cognito user pool together.

``store`` saves, loads, lists and deletes them (``invoke state.*``); one module
per service part (``postgres``, ``dynamodb``, ``cognito``), each working
through the endpoints the service layer gives, so the embedded, docker and
DynamoDB Local paths share it; ``manifest`` is the pure description of a
saved state; ``items`` DynamoDB's JSON wire form; ``moto_random`` the seeds
that give saved Cognito ids back.
"""
