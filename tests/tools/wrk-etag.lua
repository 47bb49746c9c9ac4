-- wrk script for test_load.sh: revalidate like a client does. Each connection sends
-- If-None-Match with the last ETag it was given; a 200 (a new snapshot) brings a new ETag.
-- At the end prints "statuses 200=N 304=N other=N".
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	etag = args[1] or ""
	n200, n304, nother = 0, 0, 0
end

function request()
	local h = {}
	for k, v in pairs(wrk.headers) do
		h[k] = v
	end
	h["If-None-Match"] = etag
	return wrk.format(nil, nil, h)
end

function response(status, headers, body)
	if status == 200 then
		n200 = n200 + 1
		etag = headers["ETag"] or headers["etag"] or etag
	elseif status == 304 then
		n304 = n304 + 1
	else
		nother = nother + 1
	end
end

function done(summary, latency, requests)
	local a, b, c = 0, 0, 0
	for _, t in ipairs(threads) do
		a = a + t:get("n200")
		b = b + t:get("n304")
		c = c + t:get("nother")
	end
	io.write(string.format("statuses 200=%d 304=%d other=%d\n", a, b, c))
end
