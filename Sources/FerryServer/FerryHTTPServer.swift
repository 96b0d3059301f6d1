import FerryCheck
public import FerryCore
public import Hummingbird
public import Logging
import NIOCore
public import Prometheus

/// Builds Ferry's HTTP application: health, readiness and Prometheus metrics; later issues add their APIs here.
///
/// `buildRouter` is separate from `buildApplication` so tests drive the same routes without a socket.
public enum FerryHTTPServer {
    public static func buildRouter(
        readiness: ReadinessMonitor, registry: PrometheusCollectorRegistry, cluster: ClusterAPI? = nil
    ) -> Router<BasicRequestContext> {
        let router = Router()
        var endpoints: [(method: String, path: String, description: String)] = [
            ("GET", "/health/live", "the process is up"), ("GET", "/health/ready", "every configured server answers"),
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

    public static func buildApplication(
        settings: HTTPSettings,
        readiness: ReadinessMonitor,
        registry: PrometheusCollectorRegistry,
        cluster: ClusterAPI? = nil,
        logger: Logger
    ) -> some ApplicationProtocol {
        Application(
            router: buildRouter(readiness: readiness, registry: registry, cluster: cluster),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "ferry"),
            logger: logger
        )
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
