// The AWS SDK for Go v2 (github.com/aws/aws-sdk-go-v2) against marketmeter; see common.go.
package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const sdkName = "aws-sdk-go-v2"
const sdkVersion = aws.SDKVersion

func newCaller(spec *Spec) func(Call) Outcome {
	clients := map[string]*mm.Client{}
	for name, cred := range spec.Credentials {
		clients[name] = mm.New(mm.Options{
			Region:           spec.Region,
			Credentials:      credentials.NewStaticCredentialsProvider(cred.ID, cred.Secret, ""),
			EndpointResolver: mm.EndpointResolverFromURL(spec.Endpoint),
			Retryer:          aws.NopRetryer{}, // every failure is seen, none retried away
		})
	}
	return func(c Call) Outcome {
		client := clients[c.Credentials]
		ctx := context.Background()
		switch c.Operation {
		case "BatchMeterUsage":
			in := &mm.BatchMeterUsageInput{ProductCode: aws.String(c.ProductCode)}
			for _, r := range c.Records {
				rec := types.UsageRecord{
					CustomerIdentifier: aws.String(r.CustomerIdentifier),
					Dimension:          aws.String(r.Dimension),
					Quantity:           aws.Int32(r.Quantity),
					Timestamp:          fromMillis(r.TimestampMs),
				}
				for _, a := range r.Allocations {
					alloc := types.UsageAllocation{AllocatedUsageQuantity: aws.Int32(a.Quantity)}
					for _, t := range a.Tags {
						alloc.Tags = append(alloc.Tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
					}
					rec.UsageAllocations = append(rec.UsageAllocations, alloc)
				}
				in.UsageRecords = append(in.UsageRecords, rec)
			}
			out, err := client.BatchMeterUsage(ctx, in)
			if err != nil {
				return failed(err)
			}
			results := []any{}
			for _, r := range out.Results {
				results = append(results, map[string]any{
					"status":              string(r.Status),
					"metering_record_id":  aws.ToString(r.MeteringRecordId),
					"customer_identifier": aws.ToString(r.UsageRecord.CustomerIdentifier),
					"dimension":           aws.ToString(r.UsageRecord.Dimension),
					"quantity":            aws.ToInt32(r.UsageRecord.Quantity),
					"timestamp_ms":        millis(r.UsageRecord.Timestamp),
				})
			}
			return succeeded(out.ResultMetadata, map[string]any{
				"results": results, "unprocessed": len(out.UnprocessedRecords),
			})
		case "MeterUsage":
			out, err := client.MeterUsage(ctx, &mm.MeterUsageInput{
				ProductCode:    aws.String(c.ProductCode),
				Timestamp:      fromMillis(c.TimestampMs),
				UsageDimension: aws.String(c.Dimension),
				UsageQuantity:  aws.Int32(c.Quantity),
				DryRun:         aws.Bool(c.DryRun),
			})
			if err != nil {
				return failed(err)
			}
			return succeeded(out.ResultMetadata, map[string]any{
				"metering_record_id": aws.ToString(out.MeteringRecordId),
			})
		case "ResolveCustomer":
			out, err := client.ResolveCustomer(ctx, &mm.ResolveCustomerInput{
				RegistrationToken: aws.String(c.Token),
			})
			if err != nil {
				return failed(err)
			}
			return succeeded(out.ResultMetadata, map[string]any{
				"customer_identifier":     aws.ToString(out.CustomerIdentifier),
				"customer_aws_account_id": aws.ToString(out.CustomerAWSAccountId),
				"product_code":            aws.ToString(out.ProductCode),
			})
		case "RegisterUsage":
			out, err := client.RegisterUsage(ctx, &mm.RegisterUsageInput{
				ProductCode:      aws.String(c.ProductCode),
				PublicKeyVersion: aws.Int32(c.KeyVersion),
				Nonce:            aws.String(c.Nonce),
			})
			if err != nil {
				return failed(err)
			}
			return succeeded(out.ResultMetadata, map[string]any{
				"signature":                     aws.ToString(out.Signature),
				"public_key_rotation_timestamp": millis(out.PublicKeyRotationTimestamp),
			})
		}
		panic("unknown operation " + c.Operation)
	}
}

func succeeded(metadata middleware.Metadata, output map[string]any) Outcome {
	status := 0
	if raw, ok := awsmiddleware.GetRawResponse(metadata).(*smithyhttp.Response); ok {
		status = raw.StatusCode
	}
	return Outcome{OK: true, Status: status, Output: output}
}

func failed(err error) Outcome {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return Outcome{Lost: true, Message: err.Error()}
	}
	out := Outcome{Code: api.ErrorCode(), Message: api.ErrorMessage(), GoType: fmt.Sprintf("%T", api)}
	var response *awshttp.ResponseError
	if errors.As(err, &response) {
		out.Status = response.HTTPStatusCode()
	}
	return out
}
