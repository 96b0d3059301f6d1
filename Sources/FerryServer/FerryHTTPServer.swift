import FerryCheck
import FerryCore
package import Hummingbird
import Logging
import NIOCore
package import Prometheus

/// Ferry's HTTP routes: health, readiness and Prometheus metrics, and the cluster's control API when configured.
///
/// FerryDaemon binds them to `http.host:http.port`; tests drive the same router without a socket (HummingbirdTesting).
package enum FerryHTTPServer {
    package static func buildRouter(
        readiness: ReadinessMonitor, registry: PrometheusCollectorRegistry, cluster: ClusterAPI? = nil
    ) -> Router<BasicRequestContext> {
        let router = Router()
        var endpoints: [(method: String, path: String, description: String)] = [
            ("GET", "/health/live", "the process is up"), ("GET", "/health/ready", "every configured server answers and every job runs"),
            ("GET", "/metrics", "Prometheus metrics"),
        ]
        if cluster != nil { endpoints += ClusterAPI.endpoints }
        let index =
            "{\"service\":\"ferry\",\"endpoints\":["
            + endpoints.map {
                "{\"method\":\($0.method.jsonString),\"path\":\($0.path.jsonString),\"description\":\($0.description.jsonString)}"
            }.joined(separator: ",") + "]}"
        router.get("/") { _, _ -> Response in jsonResponse(.ok, index) }
        cluster?.add(to: router)
        router.get("/health/live") { _, _ -> Response in
            jsonResponse(.ok, "{\"status\":\"live\"}")
        }
        router.get("/health/ready") { _, _ -> Response in
            let snapshot = readiness.snapshot
            var body = "{\"status\":\(JSONText.string(snapshot.isReady ? "ready" : "not_ready")),\"endpoints\":["
            for (index, check) in (snapshot.checks ?? []).enumerated() {
                if index > 0 { body += "," }
                body +=
                    "{\"name\":\(JSONText.string(check.name)),\"address\":\(JSONText.string(check.address)),\"status\":\(JSONText.string(check.status.rawValue))"
                if !check.isOK { body += ",\"detail\":\(JSONText.string(check.detail))" }
                body += "}"
            }
            body += "],\"jobs\":["
            for (index, job) in snapshot.jobs.enumerated() {
                if index > 0 { body += "," }
                body += "{\"name\":\(JSONText.string(job.name)),\"state\":\(JSONText.string(job.state.rawValue))"
                if let error = job.error { body += ",\"error\":\(JSONText.string(error))" }
                body += "}"
            }
            body += "]}"
            return jsonResponse(snapshot.isReady ? .ok : .serviceUnavailable, body)
        }
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return router
    }

    static func jsonResponse(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

extension String {
    fileprivate var jsonString: String { JSONText.string(self) }
}
