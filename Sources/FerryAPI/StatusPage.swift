import Crypto
package import FerryCore
package import Foundation
import HTTPTypes
package import Hummingbird
import Logging
import Mustache
import NIOCore
import Synchronization

/// What the status page shows, gathered by the daemon for a user.
package struct UIState: Codable, Sendable, Equatable {
    package struct Pipeline: Codable, Sendable, Equatable {
        package var name: String
        package var state: String
        package var watermark: String?
        package var queue: Int?
        package var lag: Int?
        package var applied: Int64?
        package var rowsPerSecond: Int?
        package var deadLetters: Int?
        package var lastError: String?

        package init(name: String, state: String) {
            self.name = name
            self.state = state
        }
    }

    /// One of the daemon's jobs (`redis_sync`, `backup`, `cluster_agent:node1`…) as readiness sees it.
    package struct Service: Codable, Sendable, Equatable {
        package var name: String
        package var state: String
        package var error: String?

        package init(name: String, state: String, error: String?) {
            self.name = name
            self.state = state
            self.error = error
        }
    }

    package struct Node: Codable, Sendable, Equatable {
        package var name: String
        package var role: String
        package var lag: String?

        package init(name: String, role: String, lag: String?) {
            self.name = name
            self.role = role
            self.lag = lag
        }
    }

    package struct Job: Codable, Sendable, Equatable {
        package var id: String
        package var kind: String
        package var target: String
        package var state: String
        package var rows: Int64
        package var phase: String
        package var created: String
    }

    package var generatedAt: String
    package var pipelines: [Pipeline] = []
    package var services: [Service] = []
    package var nodes: [Node] = []
    package var jobs: [Job] = []

    package init(generatedAt: Date = Date()) {
        self.generatedAt = APIDateTranscoder.format(generatedAt)
    }
}

/// The daemon's part of the status page: pipelines, services and nodes as of now.
package typealias UIStateProvider = @Sendable () async -> UIState

/// Status page sessions: a one-time code (60 s) made by `POST /ui/sessions` with a token, exchanged by the browser at
/// `GET /ui/login?code=…` for a session cookie (12 h, HttpOnly, SameSite=Strict). The cookie names a session, never
/// the token; a session is only as good as its user's current permissions (a user removed from the file loses it at
/// the next reload).
package final class UISessions: Sendable {
    private struct Entry {
        var user: String
        var expires: ContinuousClock.Instant
    }

    private let codes = Mutex<[String: Entry]>([:])
    private let sessions = Mutex<[String: Entry]>([:])

    package init() {}

    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    package func makeCode(for user: String) -> String {
        let code = Self.random()
        codes.withLock { all in
            let now = ContinuousClock.now
            all = all.filter { $0.value.expires > now }
            all[code] = Entry(user: user, expires: now + .seconds(60))
        }
        return code
    }

    /// The session a code opens (once); nil for an unknown, used or expired code.
    package func redeem(_ code: String) -> String? {
        guard let entry = codes.withLock({ $0.removeValue(forKey: code) }), entry.expires > .now else { return nil }
        let session = Self.random()
        sessions.withLock { all in
            let now = ContinuousClock.now
            all = all.filter { $0.value.expires > now }
            all[session] = Entry(user: entry.user, expires: now + .seconds(12 * 3600))
        }
        return session
    }

    package func user(ofSession session: String) -> String? {
        sessions.withLock { all in
            guard let entry = all[session], entry.expires > .now else { return nil }
            return entry.user
        }
    }
}

/// `/ui`: the status page, server-rendered (swift-mustache) with no external assets, refreshed every 2 s by a small
/// script that reads `/ui/state` and writes the numbers into the page (text only, never HTML). Served beside the API
/// (it is not part of openapi.yaml), behind a session cookie (``UISessions``), with a strict Content-Security-Policy.
package struct StatusPage: Sendable {
    let permissions: PermissionsSource
    let sessions: UISessions
    let audit: AuditLog
    let state: UIStateProvider
    let jobs: JobQueue?
    let template: MustacheTemplate

    package init(permissions: PermissionsSource, sessions: UISessions, audit: AuditLog, jobs: JobQueue?, state: @escaping UIStateProvider) throws {
        self.permissions = permissions
        self.sessions = sessions
        self.audit = audit
        self.jobs = jobs
        self.state = state
        template = try MustacheTemplate(string: Self.page)
    }

    func add(to router: Router<FerryRequestContext>) {
        router.post("/ui/sessions") { request, context in
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
                let user = permissions.permissions.authenticate(String(header.dropFirst(7)))
            else {
                audit.enqueue(event(request, context, type: "auth_failure", user: nil, status: 401))
                return Self.json(
                    .unauthorized,
                    "{\"error\":\"authentication\",\"message\":\"missing or unknown bearer token\",\"fix\":\"send `Authorization: Bearer <token>`\"}")
            }
            let code = sessions.makeCode(for: user.name)
            audit.enqueue(event(request, context, type: "request", user: user.name, status: 201))
            return Self.json(.created, "{\"url\":\(JSONText.string("/ui/login?code=" + code)),\"expires_in\":60}")
        }
        router.get("/ui/login") { request, context in
            guard let code = request.uri.queryParameters.get("code"), let session = sessions.redeem(code) else {
                audit.enqueue(event(request, context, type: "auth_failure", user: nil, status: 401))
                return Self.html(
                    .unauthorized,
                    "<!doctype html><title>Ferry</title><p>This sign-in link is unknown, used or expired. Ask for a new one: <code>curl -X POST -H 'Authorization: Bearer TOKEN' http://HOST:PORT/ui/sessions</code></p>",
                    nonce: nil)
            }
            var headers = HTTPFields()
            headers[.location] = "/ui"
            headers[.setCookie] = "ferry_ui=\(session); Path=/ui; HttpOnly; SameSite=Strict; Max-Age=43200"
            headers[.cacheControl] = "no-store"
            audit.enqueue(event(request, context, type: "request", user: sessions.user(ofSession: session), status: 303))
            return Response(status: .seeOther, headers: headers)
        }
        router.get("/ui") { request, context in
            guard let user = signedIn(request) else { return Self.signIn(request, context, audit: audit, event: event) }
            let current = await stateFor(user)
            let nonce = UISessions.random()
            var page = template.render(Self.context(current, nonce: nonce))
            page = page.replacingOccurrences(of: "__STATE__", with: Self.stateJSON(current).replacingOccurrences(of: "<", with: "\\u003c"))
            return Self.html(.ok, page, nonce: nonce)
        }
        router.get("/ui/state") { request, context in
            guard let user = signedIn(request) else {
                return Self.json(.unauthorized, "{\"error\":\"authentication\",\"message\":\"not signed in\"}")
            }
            return Self.json(.ok, Self.stateJSON(await stateFor(user)))
        }
    }

    func event(_ request: Request, _ context: FerryRequestContext, type: String, user: String?, status: Int) -> AuditEvent {
        AuditEvent(
            eventType: type, user: user, sourceIP: context.remoteAddress?.ipAddress, method: request.method.rawValue, resource: request.uri.path,
            action: "ui", result: status < 400 ? "ok" : "authentication", status: status)
    }

    /// The signed-in user, by the session cookie, as the permissions file has them now.
    func signedIn(_ request: Request) -> Permissions.User? {
        guard let cookie = request.headers[.cookie] else { return nil }
        for part in cookie.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces)
            guard pair.hasPrefix("ferry_ui="), let name = sessions.user(ofSession: String(pair.dropFirst("ferry_ui=".count))) else { continue }
            return permissions.permissions.users.first { $0.name == name }
        }
        return nil
    }

    static func signIn(
        _ request: Request, _ context: FerryRequestContext, audit: AuditLog,
        event: (Request, FerryRequestContext, String, String?, Int) -> AuditEvent
    ) -> Response {
        audit.enqueue(event(request, context, "auth_failure", nil, 401))
        return html(
            .unauthorized,
            "<!doctype html><title>Ferry</title><p>Sign in with a link from <code>curl -X POST -H 'Authorization: Bearer TOKEN' http://HOST:PORT/ui/sessions</code> (it answers the link; open it within a minute).</p>",
            nonce: nil)
    }

    /// The daemon's state plus the user's recent jobs (an admin's: everyone's).
    func stateFor(_ user: Permissions.User) async -> UIState {
        var current = await state()
        if let jobs, let records = try? await jobs.store.list(user: user.admin ? nil : user.name, state: nil, kind: nil, before: nil, limit: 10) {
            var shown: [UIState.Job] = []
            for stored in records {
                let record = await jobs.live(stored.id) ?? stored
                shown.append(
                    UIState.Job(
                        id: record.id.uuidString.lowercased(), kind: record.kind.rawValue, target: record.target, state: record.state.rawValue,
                        rows: record.rows, phase: record.phase, created: APIDateTranscoder.format(record.createdAt)))
            }
            current.jobs = shown
        }
        return current
    }

    static func stateJSON(_ state: UIState) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(state)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func context(_ state: UIState, nonce: String) -> [String: Any] {
        func text(_ value: (any CustomStringConvertible)?) -> String { value.map { "\($0)" } ?? "-" }
        return [
            "nonce": nonce, "generated": state.generatedAt,
            "pipelines": state.pipelines.map { pipeline in
                [
                    "name": pipeline.name, "state": pipeline.state, "watermark": text(pipeline.watermark), "queue": text(pipeline.queue),
                    "lag": text(pipeline.lag), "applied": text(pipeline.applied), "rate": text(pipeline.rowsPerSecond),
                    "dead": text(pipeline.deadLetters), "error": pipeline.lastError ?? "",
                ] as [String: Any]
            },
            "services": state.services.map { ["name": $0.name, "state": $0.state, "error": $0.error ?? ""] as [String: Any] },
            "nodes": state.nodes.map { ["name": $0.name, "role": $0.role, "lag": $0.lag ?? "-"] as [String: Any] },
            "jobs": state.jobs.map {
                [
                    "id": $0.id, "kind": $0.kind, "target": $0.target, "state": $0.state, "rows": "\($0.rows)", "phase": $0.phase,
                    "created": $0.created,
                ]
                    as [String: Any]
            },
            "hasPipelines": !state.pipelines.isEmpty, "hasNodes": !state.nodes.isEmpty, "hasJobs": !state.jobs.isEmpty,
        ]
    }

    static func html(_ status: HTTPResponse.Status, _ body: String, nonce: String?) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        let scripts = nonce.map { "'nonce-\($0)'" } ?? "'none'"
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; script-src \(scripts); style-src \(scripts); connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// The page. Numbers carry ids (`p-<pipeline>-<field>`) the script updates; jobs and services are rebuilt from
    /// text nodes. `__STATE__` is the state as JSON (with `<` escaped), for the script's first paint.
    static let page = #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Ferry status</title>
        <style nonce="{{nonce}}">
        body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
        h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:24px 0 8px;color:#444}
        table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002;min-width:60%}
        th,td{padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:left;font-variant-numeric:tabular-nums}
        th{background:#eef0f4;font-weight:600}.ok,.running,.succeeded,.ready{color:#0a7a35}.failed,.stalled,.not_ready{color:#b42318}
        .muted{color:#667085}.error{color:#b42318;max-width:420px;overflow-wrap:anywhere}
        </style></head>
        <body>
        <h1>Ferry</h1>
        <div class="muted">updated <span id="updated">{{generated}}</span> · refreshes <span id="refreshes">0</span></div>
        <h2>Pipelines</h2>
        <table><thead><tr><th>pipeline</th><th>state</th><th>watermark</th><th>queue</th><th>lag</th><th>applied</th><th>rows/s</th><th>dead letters</th><th>last error</th></tr></thead>
        <tbody id="pipelines">{{#pipelines}}<tr><td>{{name}}</td><td id="p-{{name}}-state" class="{{state}}">{{state}}</td><td id="p-{{name}}-watermark">{{watermark}}</td><td id="p-{{name}}-queue">{{queue}}</td><td id="p-{{name}}-lag">{{lag}}</td><td id="p-{{name}}-applied">{{applied}}</td><td id="p-{{name}}-rate">{{rate}}</td><td id="p-{{name}}-dead">{{dead}}</td><td id="p-{{name}}-error" class="error">{{error}}</td></tr>{{/pipelines}}{{^hasPipelines}}<tr><td colspan="9" class="muted">no pipelines</td></tr>{{/hasPipelines}}</tbody></table>
        <h2>Services</h2>
        <table><thead><tr><th>service</th><th>state</th><th>error</th></tr></thead>
        <tbody id="services">{{#services}}<tr><td>{{name}}</td><td class="{{state}}">{{state}}</td><td class="error">{{error}}</td></tr>{{/services}}</tbody></table>
        {{#hasNodes}}<h2>Cluster</h2>
        <table><thead><tr><th>node</th><th>role</th><th>lag</th></tr></thead>
        <tbody id="nodes">{{#nodes}}<tr><td>{{name}}</td><td>{{role}}</td><td>{{lag}}</td></tr>{{/nodes}}</tbody></table>{{/hasNodes}}
        <h2>Recent jobs</h2>
        <table><thead><tr><th>job</th><th>kind</th><th>target</th><th>state</th><th>rows</th><th>phase</th><th>created</th></tr></thead>
        <tbody id="jobs">{{#jobs}}<tr><td>{{id}}</td><td>{{kind}}</td><td>{{target}}</td><td class="{{state}}">{{state}}</td><td>{{rows}}</td><td>{{phase}}</td><td>{{created}}</td></tr>{{/jobs}}{{^hasJobs}}<tr><td colspan="7" class="muted">no jobs</td></tr>{{/hasJobs}}</tbody></table>
        <script nonce="{{nonce}}">
        (function(){
          var refreshes=0;
          function cell(t,cls){var td=document.createElement('td');td.textContent=(t===null||t===undefined)?'-':String(t);if(cls)td.className=cls;return td;}
          function rows(id,list,fields){var body=document.getElementById(id);if(!body)return;while(body.firstChild)body.removeChild(body.firstChild);
            list.forEach(function(item){var tr=document.createElement('tr');fields.forEach(function(f){tr.appendChild(cell(item[f],f==='state'?String(item[f]):''));});body.appendChild(tr);});
            if(!list.length){var tr=document.createElement('tr');var td=cell('none','muted');td.colSpan=fields.length;tr.appendChild(td);body.appendChild(tr);}}
          function show(s){
            (s.pipelines||[]).forEach(function(p){
              [['state','state'],['watermark','watermark'],['queue','queue'],['lag','lag'],['applied','applied'],['rate','rows_per_second'],['dead','dead_letters'],['error','last_error']].forEach(function(pair){
                var el=document.getElementById('p-'+p.name+'-'+pair[0]);if(el){var v=p[pair[1]];el.textContent=(v===null||v===undefined)?(pair[0]==='error'?'':'-'):String(v);if(pair[0]==='state')el.className=String(v);}
              });
            });
            rows('services',s.services||[],['name','state','error']);
            rows('jobs',s.jobs||[],['id','kind','target','state','rows','phase','created']);
            document.getElementById('updated').textContent=s.generated_at;
            document.getElementById('refreshes').textContent=String(refreshes);
          }
          function poll(){fetch('/ui/state',{credentials:'same-origin',cache:'no-store'}).then(function(r){return r.ok?r.json():null;}).then(function(s){if(s){refreshes+=1;show(s);}}).catch(function(){}).then(function(){setTimeout(poll,2000);});}
          show(__STATE__);
          setTimeout(poll,2000);
        })();
        </script>
        </body></html>
        """#
}
