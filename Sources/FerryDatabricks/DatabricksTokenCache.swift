import FerryCore

/// The OAuth access token in use, shared by every request of a client: fetched when first needed, renewed when it is
/// within its refresh margin of expiring, and fetched once for all the requests that need it at the same moment.
actor DatabricksTokenCache {
    /// A token and when to stop using it.
    struct Token: Sendable {
        var value: Secret
        var renewAt: ContinuousClock.Instant
    }

    private var current: Token?
    /// Requests waiting for the fetch under way; nil when none is under way.
    private var waiting: [CheckedContinuation<Secret, any Error>]?

    /// The cached token, or a new one from `fetch` when there is none or it is due for renewal.
    func token(fetch: @Sendable () async throws(FerryError) -> Token) async throws(FerryError) -> Secret {
        if let current, ContinuousClock.now < current.renewAt { return current.value }
        if waiting != nil {
            do {
                return try await withCheckedThrowingContinuation { waiting?.append($0) }
            } catch let error as FerryError {
                throw error
            } catch {
                throw FerryError(.authentication, "cannot get an OAuth token: \(error)")
            }
        }
        waiting = []
        let result: Result<Token, FerryError>
        do {
            result = .success(try await fetch())
        } catch {
            result = .failure(error)
        }
        let waiters = waiting ?? []
        waiting = nil
        switch result {
        case .success(let token):
            current = token
            for waiter in waiters { waiter.resume(returning: token.value) }
            return token.value
        case .failure(let error):
            for waiter in waiters { waiter.resume(throwing: error) }
            throw error
        }
    }

    /// Forgets `token` (the service refused it before its time): the next request fetches a new one.
    func invalidate(_ token: Secret) {
        if current?.value == token { current = nil }
    }
}
