package io.lakewatch.connect;

import org.sparkproject.connect.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import org.sparkproject.connect.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import org.sparkproject.connect.grpc.Metadata;
import org.sparkproject.connect.grpc.ServerCall;
import org.sparkproject.connect.grpc.ServerCallHandler;
import org.sparkproject.connect.grpc.ServerInterceptor;
import org.sparkproject.connect.grpc.Status;

/**
 * Spark Connect interceptor ({@code spark.connect.grpc.interceptor.classes}): every request
 * message is checked by {@link Guard} before the service sees it; a refused one ends its call
 * with PERMISSION_DENIED and the reason, and never reaches the planner. Runs before Spark's
 * token check (interceptors run in reverse order of registration), so a call the token check
 * already closed is not checked again.
 */
public final class GuardInterceptor implements ServerInterceptor {
    @Override
    public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
            ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
        final String method = call.getMethodDescriptor().getBareMethodName();
        final boolean[] closed = {false};
        final ServerCall<ReqT, RespT> tracked = new SimpleForwardingServerCall<ReqT, RespT>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                synchronized (closed) {
                    if (closed[0]) return;
                    closed[0] = true;
                }
                super.close(status, trailers);
            }
        };
        ServerCall.Listener<ReqT> delegate = next.startCall(tracked, headers);
        return new SimpleForwardingServerCallListener<ReqT>(delegate) {
            private boolean refused;

            @Override
            public void onMessage(ReqT message) {
                if (refused) return;
                synchronized (closed) {
                    if (closed[0]) return;
                }
                String why = Guard.check(method, message);
                if (why != null) {
                    refused = true;
                    tracked.close(Status.PERMISSION_DENIED.withDescription(why), new Metadata());
                    return;
                }
                super.onMessage(message);
            }

            @Override
            public void onHalfClose() {
                if (!refused) super.onHalfClose();
            }

            @Override
            public void onReady() {
                if (!refused) super.onReady();
            }
        };
    }
}
