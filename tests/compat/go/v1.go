// The AWS SDK for Go v1 (github.com/aws/aws-sdk-go) against marketmeter; see common.go.
package main

import (
	"fmt"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/request"
	"github.com/aws/aws-sdk-go/aws/session"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"
)

const sdkName = "aws-sdk-go"
const sdkVersion = aws.SDKVersion

func newCaller(spec *Spec) func(Call) Outcome {
	clients := map[string]*mm.MarketplaceMetering{}
	for name, cred := range spec.Credentials {
		sess := session.Must(session.NewSession(&aws.Config{
			Region:      aws.String(spec.Region),
			Endpoint:    aws.String(spec.Endpoint),
			Credentials: credentials.NewStaticCredentials(cred.ID, cred.Secret, ""),
			MaxRetries:  aws.Int(0), // every failure is seen, none retried away
		}))
		clients[name] = mm.New(sess)
	}
	return func(c Call) Outcome {
		client := clients[c.Credentials]
		switch c.Operation {
		case "BatchMeterUsage":
			in := &mm.BatchMeterUsageInput{ProductCode: aws.String(c.ProductCode)}
			for _, r := range c.Records {
				rec := &mm.UsageRecord{
					CustomerIdentifier: aws.String(r.CustomerIdentifier),
					Dimension:          aws.String(r.Dimension),
					Quantity:           aws.Int64(int64(r.Quantity)),
					Timestamp:          fromMillis(r.TimestampMs),
				}
				for _, a := range r.Allocations {
					alloc := &mm.UsageAllocation{AllocatedUsageQuantity: aws.Int64(int64(a.Quantity))}
					for _, t := range a.Tags {
						alloc.Tags = append(alloc.Tags, &mm.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
					}
					rec.UsageAllocations = append(rec.UsageAllocations, alloc)
				}
				in.UsageRecords = append(in.UsageRecords, rec)
			}
			req, out := client.BatchMeterUsageRequest(in)
			if err := req.Send(); err != nil {
				return failed(req, err)
			}
			results := []any{}
			for _, r := range out.Results {
				results = append(results, map[string]any{
					"status":              aws.StringValue(r.Status),
					"metering_record_id":  aws.StringValue(r.MeteringRecordId),
					"customer_identifier": aws.StringValue(r.UsageRecord.CustomerIdentifier),
					"dimension":           aws.StringValue(r.UsageRecord.Dimension),
					"quantity":            aws.Int64Value(r.UsageRecord.Quantity),
					"timestamp_ms":        millis(r.UsageRecord.Timestamp),
				})
			}
			return succeeded(req, map[string]any{
				"results": results, "unprocessed": len(out.UnprocessedRecords),
			})
		case "MeterUsage":
			req, out := client.MeterUsageRequest(&mm.MeterUsageInput{
				ProductCode:    aws.String(c.ProductCode),
				Timestamp:      fromMillis(c.TimestampMs),
				UsageDimension: aws.String(c.Dimension),
				UsageQuantity:  aws.Int64(int64(c.Quantity)),
				DryRun:         aws.Bool(c.DryRun),
			})
			if err := req.Send(); err != nil {
				return failed(req, err)
			}
			return succeeded(req, map[string]any{
				"metering_record_id": aws.StringValue(out.MeteringRecordId),
			})
		case "ResolveCustomer":
			req, out := client.ResolveCustomerRequest(&mm.ResolveCustomerInput{
				RegistrationToken: aws.String(c.Token),
			})
			if err := req.Send(); err != nil {
				return failed(req, err)
			}
			return succeeded(req, map[string]any{
				"customer_identifier":     aws.StringValue(out.CustomerIdentifier),
				"customer_aws_account_id": aws.StringValue(out.CustomerAWSAccountId),
				"product_code":            aws.StringValue(out.ProductCode),
			})
		case "RegisterUsage":
			req, out := client.RegisterUsageRequest(&mm.RegisterUsageInput{
				ProductCode:      aws.String(c.ProductCode),
				PublicKeyVersion: aws.Int64(int64(c.KeyVersion)),
				Nonce:            aws.String(c.Nonce),
			})
			if err := req.Send(); err != nil {
				return failed(req, err)
			}
			return succeeded(req, map[string]any{
				"signature":                     aws.StringValue(out.Signature),
				"public_key_rotation_timestamp": millis(out.PublicKeyRotationTimestamp),
			})
		}
		panic("unknown operation " + c.Operation)
	}
}

func succeeded(req *request.Request, output map[string]any) Outcome {
	return Outcome{OK: true, Status: req.HTTPResponse.StatusCode, Output: output}
}

func failed(req *request.Request, err error) Outcome {
	// A service's error carries the status of a response that was read; anything else
	// (a connection or body that could not be read) is an answer lost.
	failure, ok := err.(awserr.RequestFailure)
	if !ok || failure.StatusCode() == 0 || failure.Code() == request.ErrCodeSerialization ||
		failure.Code() == request.ErrCodeRead {
		return Outcome{Lost: true, Message: err.Error()}
	}
	return Outcome{
		Code: failure.Code(), Message: failure.Message(), Status: failure.StatusCode(),
		GoType: fmt.Sprintf("%T", err),
	}
}
