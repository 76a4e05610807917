package klr;

import java.lang.reflect.Array;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Generic types: what a class's type variables stand for, through its whole hierarchy
 *  (RequestHandler&lt;I, O&gt;'s I and O; a bean's List&lt;T&gt; property). */
final class Types {
    private static final Map<Type, Map<TypeVariable<?>, Type>> BINDINGS =
            new ConcurrentHashMap<Type, Map<TypeVariable<?>, Type>>();

    private Types() {
    }

    /** Each type variable of the type's superclasses and interfaces, mapped to what it stands
     *  for as seen from this type. */
    static Map<TypeVariable<?>, Type> bindings(Type type) {
        Map<TypeVariable<?>, Type> bindings = BINDINGS.get(type);
        if (bindings == null) {
            bindings = new HashMap<TypeVariable<?>, Type>();
            collect(type, bindings);
            BINDINGS.put(type, bindings);
        }
        return bindings;
    }

    private static void collect(Type type, Map<TypeVariable<?>, Type> bindings) {
        Class<?> raw = raw(type);
        if (type instanceof ParameterizedType) {
            Type[] arguments = ((ParameterizedType) type).getActualTypeArguments();
            TypeVariable<?>[] variables = raw.getTypeParameters();
            for (int i = 0; i < variables.length && i < arguments.length; i++) {
                bindings.put(variables[i], resolve(arguments[i], bindings));
            }
        }
        if (raw.getGenericSuperclass() != null) {
            collect(raw.getGenericSuperclass(), bindings);
        }
        for (Type parent : raw.getGenericInterfaces()) {
            collect(parent, bindings);
        }
    }

    /** The type with the variables the bindings know replaced. */
    static Type resolve(Type type, Map<TypeVariable<?>, Type> bindings) {
        if (type instanceof TypeVariable) {
            Type bound = bindings.get(type);
            return bound == null ? type : bound;
        }
        if (type instanceof ParameterizedType) {
            ParameterizedType parameterized = (ParameterizedType) type;
            Type[] arguments = parameterized.getActualTypeArguments().clone();
            for (int i = 0; i < arguments.length; i++) {
                arguments[i] = resolve(arguments[i], bindings);
            }
            return new Parameterized((Class<?>) parameterized.getRawType(), arguments);
        }
        if (type instanceof GenericArrayType) {
            Type component = resolve(((GenericArrayType) type).getGenericComponentType(), bindings);
            return Array.newInstance(raw(component), 0).getClass();
        }
        if (type instanceof WildcardType) {
            return resolve(((WildcardType) type).getUpperBounds()[0], bindings);
        }
        return type;
    }

    static Class<?> raw(Type type) {
        if (type instanceof Class) {
            return (Class<?>) type;
        }
        if (type instanceof ParameterizedType) {
            return (Class<?>) ((ParameterizedType) type).getRawType();
        }
        if (type instanceof GenericArrayType) {
            return Array.newInstance(raw(((GenericArrayType) type).getGenericComponentType()), 0).getClass();
        }
        if (type instanceof TypeVariable) {
            return raw(((TypeVariable<?>) type).getBounds()[0]);
        }
        if (type instanceof WildcardType) {
            return raw(((WildcardType) type).getUpperBounds()[0]);
        }
        return Object.class;
    }

    /** The i-th type argument of a parameterized type; Object when the type is raw. */
    static Type argument(Type type, int i) {
        if (type instanceof ParameterizedType) {
            Type[] arguments = ((ParameterizedType) type).getActualTypeArguments();
            if (i < arguments.length) {
                return arguments[i];
            }
        }
        return Object.class;
    }

    static boolean isVoid(Type type) {
        return type == void.class || type == Void.class;
    }

    /** A parameterized type with resolved arguments. */
    private static final class Parameterized implements ParameterizedType {
        private final Class<?> raw;
        private final Type[] arguments;

        Parameterized(Class<?> raw, Type[] arguments) {
            this.raw = raw;
            this.arguments = arguments;
        }

        public Type[] getActualTypeArguments() {
            return arguments.clone();
        }

        public Type getRawType() {
            return raw;
        }

        public Type getOwnerType() {
            return raw.getDeclaringClass();
        }

        @Override
        public boolean equals(Object other) {
            return other instanceof ParameterizedType
                    && raw.equals(((ParameterizedType) other).getRawType())
                    && Arrays.equals(arguments, ((ParameterizedType) other).getActualTypeArguments());
        }

        @Override
        public int hashCode() {
            return raw.hashCode() ^ Arrays.hashCode(arguments);
        }

        @Override
        public String toString() {
            return raw.getName() + Arrays.toString(arguments).replace('[', '<').replace(']', '>');
        }
    }
}
