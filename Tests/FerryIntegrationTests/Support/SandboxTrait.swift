import FerryCore
import FerryPostgresNode
import FerrySandbox
import Logging
import Testing

/// Gives a suite one sandbox (PostgreSQL + Redis), started before its first test and always stopped after its
/// last, also when tests fail. Tests read it from ``SandboxContext/current``.
struct SandboxTrait: SuiteTrait, TestScoping {
    var options: Sandbox.Options

    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: () async throws -> Void) async throws {
        try await Sandbox.with(options: options, logger: Logger(label: "ferry.test.sandbox")) { sandbox in
            try await SandboxContext.$current.withValue(sandbox) {
                try await function()
            }
        }
    }
}

enum SandboxContext {
    @TaskLocal static var current: Sandbox?

    /// The suite's sandbox; fails the test when the suite has no `.sandbox` trait.
    static func require() throws -> Sandbox {
        try #require(current, "this suite needs the .sandbox trait")
    }
}

extension Trait where Self == SandboxTrait {
    /// A PostgreSQL + Redis sandbox for the whole suite; fsync off for speed.
    static var sandbox: Self {
        var options = Sandbox.Options()
        options.durable = false
        return SandboxTrait(options: options)
    }

    static func sandbox(_ configure: (inout Sandbox.Options) -> Void) -> Self {
        var options = Sandbox.Options()
        options.durable = false
        configure(&options)
        return SandboxTrait(options: options)
    }
}
