// Package apple is Orchard's client of Apple's "Apps and Books" license API v2
// (formerly VPP) and of the app metadata lookup.
//
// The client is typed, streaming, rate limited and Retry-After aware. The rules
// it follows come from doc/apple-api.md (§13 client checklist, §15
// decisions) and DESIGN.md (R3 throttle holds, R12 one manager per account):
//
//   - Every answer, whatever its HTTP status, is read for an "errorNumber"
//     (Apple answers a garbage token with HTTP 200 and error 9622). Errors come
//     back as *Error, whose Is method matches the sentinel kinds (ErrTokenExpired,
//     ErrNotEnoughLicenses, ...), so callers write errors.Is(err, apple.ErrTokenExpired).
//   - Every successful answer's mdmInfo is compared with Config.MDM.ID; another
//     manager's id yields a *ClaimedError naming that manager.
//   - Throttling (HTTP 503, 429, any 5xx, errors 9646/9729/9644) yields a hold
//     time: Retry-After in seconds or as an HTTP date (capped), else exponential
//     backoff with full jitter. A hold short enough (Config.MaxInlineWait) is
//     waited for inside the call, otherwise the call returns a *ThrottleError at
//     once and the scheduler holds the whole account until ThrottleError.Until.
//     The client remembers each token's hold and refuses to send anything for
//     a held token before its time.
//   - A token-bucket limiter per token keeps requests below the
//     maxRequestPerSecond of the (cached, 5-minute) service configuration.
//   - Paginated lists are streamed as iter.Seq2 iterators: one page in memory at
//     a time (plus at most Parallel prefetched pages), every page carrying the
//     first page's versionId for the next incremental pass.
//   - The content token is a secret: it appears only in the Authorization header
//     (and the itvt cookie of metadata lookups), never in an error, log line or
//     panic. Token's String, GoString, Format, LogValue and MarshalJSON redact it.
package apple
