#!/usr/bin/env ruby
# frozen_string_literal: true

# KLR bootstrap shim: a small Lambda runtime client for Ruby functions.
#
# Installed in /var/runtime (entry: /var/runtime/bootstrap). It loads the file named by
# _HANDLER (`file.method` or `file.Mod::Class.method`, relative to LAMBDA_TASK_ROOT), then
# loops over the Lambda Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API: get an event, call
# the handler with the keywords `event:` and `context:`, post the result or the error. What the
# function observes (error types, context object, exit after a critical error) follows the
# official Ruby runtime. Standard library only; Ruby 2.5 through 3.3, so no newer syntax.

require 'json'
require 'net/http'
require 'stringio'

# Logs reach the server at once, before the result is posted (and so before the END line).
$stdout.sync = true
$stderr.sync = true

# The context object a handler receives, with the official runtime's class name and readers.
class LambdaContext
  attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name,
              :function_name, :memory_limit_in_mb, :function_version, :identity,
              :client_context, :tenant_id, :deadline_ms

  def initialize(headers)
    @aws_request_id = headers['Lambda-Runtime-Aws-Request-Id']
    @invoked_function_arn = headers['Lambda-Runtime-Invoked-Function-Arn']
    @deadline_ms = headers['Lambda-Runtime-Deadline-Ms'].to_i
    @tenant_id = optional(headers['Lambda-Runtime-Aws-Tenant-Id'])
    # Identity and client context are the parsed JSON hashes, as in the official runtime.
    @identity = optional(headers['Lambda-Runtime-Cognito-Identity']) { |text| JSON.parse(text) }
    @client_context = optional(headers['Lambda-Runtime-Client-Context']) { |text| JSON.parse(text) }
    @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
    @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
    @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
    @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
    @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
  end

  def get_remaining_time_in_millis
    [@deadline_ms - Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond), 0].max
  end

  private

  def optional(value)
    return nil if value.nil? || value.empty?
    block_given? ? yield(value) : value
  end
end

# Everything else stays in one namespace, away from the names of the function's own code.
module KlrBootstrap
  API_PREFIX = '/2018-06-01/runtime'
  ERROR_CONTENT_TYPE = 'application/vnd.aws.lambda.error+json'
  # The classes whose type the official runtime also puts in Lambda-Runtime-Function-Error-Type;
  # for any other it sends Function<UserException>.
  HEADER_CLASSES = %w[ArgumentError NoMethodError Exception StandardError NameError LoadError
                      SystemExit SystemStackError].freeze
  HANDLER_FORM = 'must be of form FILENAME.METHOD or FILENAME.CLASS.METHOD where FILENAME ' \
                 'corresponds with an existing Ruby source file FILENAME.rb, CLASS is an ' \
                 'optional module/class namespace and METHOD is a callable method. If using ' \
                 'CLASS, METHOD must be a class-level method.'

  # An exception as the official runtime reports it: `<phase><Class>` (Function or Init).
  class Report
    attr_reader :body, :header_type

    def initialize(error, phase)
      type = "#{phase}<#{error.class}>"
      @header_type = HEADER_CLASSES.include?(error.class.to_s) ? type : 'Function<UserException>'
      @body = { 'errorMessage' => KlrBootstrap.utf8(message(error)), 'errorType' => type,
                'stackTrace' => function_frames(error.backtrace || []).map { |f| KlrBootstrap.utf8(f) } }
    end

    # Logged as the official runtime does: a heading line, then the error as indented JSON.
    def log(heading)
      $stdout.puts(heading, JSON.pretty_generate(body))
    end

    private

    # A NameError's message without what Ruby 3.1 appends to it (a code snippet, here of this
    # file, and spelling suggestions), as Ruby 3.3 gives it.
    def message(error)
      error.respond_to?(:original_message) ? error.original_message : error.message
    end

    # The function's own frames: the trace up to where this file called into the function,
    # less those of Ruby's require machinery.
    def function_frames(backtrace)
      backtrace.take_while { |frame| !frame.start_with?("#{__FILE__}:") }
               .reject { |frame| frame.start_with?('<internal:') || frame.include?('/rubygems/') }
    end
  end

  # The function named by _HANDLER: a top-level method, or a class-level method of a
  # (namespaced) class or module.
  class Handler
    def initialize(name, task_root)
      parts = name.split('.')
      unless [2, 3].include?(parts.size)
        raise ArgumentError, "Invalid handler #{parts}, #{HANDLER_FORM}"
      end
      @file = parts.first
      @method_name = parts.last
      @owner_name = parts[1] if parts.size == 3
      @task_root = task_root
    end

    # Runs the function file's top-level code: any exception is an init error.
    def require_file
      require File.join(@task_root, @file)
    end

    # A missing method or class is looked up here, per invocation, as in the official runtime.
    def call(event, context)
      owner = @owner_name ? Object.const_get(@owner_name) : TOPLEVEL_BINDING.receiver
      owner.send(@method_name, event: event, context: context)
    end
  end

  # One keep-alive HTTP/1.1 connection to the Runtime API, reused for every call.
  class RuntimeAPI
    def initialize(address)
      host, _, port = address.rpartition(':')
      @http = Net::HTTP.new(host, port.to_i)
      @http.read_timeout = nil # /next blocks until there is an event
      # No connect timeout: Ruby < 3.1 runs it in a thread that calls plain `sleep`, which a
      # function's own top-level `def sleep` would replace.
      @http.open_timeout = nil
    end

    def next_invocation
      response = request(Net::HTTP::Get.new("#{API_PREFIX}/invocation/next"))
      return response if response.code == '200'
      warn "bootstrap: next invocation failed with HTTP #{response.code}"
      exit 1
    end

    def post(path, body, headers)
      request_object = Net::HTTP::Post.new(API_PREFIX + path, headers)
      request_object.body = body
      request(request_object)
    end

    private

    def request(request_object)
      attempts = 0
      begin
        @http.start unless @http.started?
        @http.request(request_object)
      rescue StandardError
        @http.finish if @http.started?
        attempts += 1
        retry if attempts < 2 # a dropped keep-alive connection is retried once
        exit 1 # the server is gone; it reports the lost connection itself
      end
    end
  end

  module_function

  # Text JSON can carry: an error message may hold bytes that are not UTF-8.
  def utf8(value)
    text = value.to_s
    text = text.dup.force_encoding(Encoding::UTF_8) if text.encoding == Encoding::BINARY
    text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace).scrub
  end

  def main
    task_root = ENV.fetch('LAMBDA_TASK_ROOT', '/var/task')
    api = RuntimeAPI.new(ENV.fetch('AWS_LAMBDA_RUNTIME_API', '127.0.0.1:9001'))
    handler_name = ENV.fetch('_HANDLER', '')
    handler = initialize_function(api, handler_name, task_root)
    loop { serve_one(api, handler) }
  end

  def initialize_function(api, handler_name, task_root)
    handler = Handler.new(handler_name, task_root)
    handler.require_file
    handler
  rescue Exception => e # anything raised while loading is an init error, SyntaxError too
    report = Report.new(e, 'Init')
    report.log("Init error when loading handler #{handler_name}")
    api.post('/init/error', JSON.generate(report.body),
             'Content-Type' => ERROR_CONTENT_TYPE,
             'Lambda-Runtime-Function-Error-Type' => report.header_type)
    exit(-4) # the official runtime's status after an init error
  end

  def serve_one(api, handler)
    response = api.next_invocation
    request_id = response['Lambda-Runtime-Aws-Request-Id']
    trace_id = response['Lambda-Runtime-Trace-Id']
    if trace_id
      ENV['_X_AMZN_TRACE_ID'] = trace_id
    else
      ENV.delete('_X_AMZN_TRACE_ID')
    end
    begin
      event = unmarshal(response)
      body, content_type = marshal(handler.call(event, LambdaContext.new(response)))
    rescue Exception => e # the function's failure, whatever it is: exit, stack overflow...
      return report_error(api, request_id, e)
    end
    # A refused result (stale ID, too large) is settled by the server: carry on.
    api.post("/invocation/#{request_id}/response", body, 'Content-Type' => content_type)
  end

  # After a missing method or constant (NameError, NoMethodError) or an exception that is not
  # a StandardError, the official runtime exits once reported: the server starts a fresh process.
  def report_error(api, request_id, error)
    critical = error.is_a?(NameError) || !error.is_a?(StandardError)
    report = Report.new(error, 'Function')
    report.log(critical ? 'Critical exception from handler' : 'Error raised from handler method')
    api.post("/invocation/#{request_id}/error", JSON.generate(report.body),
             'Content-Type' => ERROR_CONTENT_TYPE,
             'Lambda-Runtime-Function-Error-Type' => report.header_type)
    exit(-1) if critical
  end

  # JSON events are parsed (string keys); any other content type reaches the handler as is.
  def unmarshal(response)
    return response.body unless response['Content-Type'] == 'application/json'
    JSON.parse(response.body)
  end

  # IO results are sent as they are; anything else through its to_json, as the official
  # runtime does (so a value JSON cannot encode fails as Function<JSON::GeneratorError>).
  def marshal(result)
    return [result.read, 'application/unknown'] if result.is_a?(IO) || result.is_a?(StringIO)
    [result.to_json, 'application/json']
  end
end

KlrBootstrap.main if $PROGRAM_NAME == __FILE__
