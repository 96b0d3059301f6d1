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
    public static func buildRouter(readiness: ReadinessMonitor, registry: PrometheusCollectorRegistry) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { _, _ -> Response in
            jsonResponse(
                .ok,
                """
                {"service":"ferry","endpoints":[\
                {"method":"GET","path":"/health/live","description":"the process is up"},\
                {"method":"GET","path":"/health/ready","description":"every configured server answers"},\
                {"method":"GET","path":"/metrics","description":"Prometheus metrics"}]}
                """
            )
        }
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
        logger: Logger
    ) -> some ApplicationProtocol {
        Application(
            router: buildRouter(readiness: readiness, registry: registry),
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
