-- wrk script: log in as the benchmark user again and again.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"violet kettle drums at dawn"}'
